"""The keyword rules of :mod:`agents.labels`: one regex per label and per intent.

``COMPILED`` holds the subject, style, format and task rules, ``INTENT_COMPILED`` the composition
intents (style of a reference, palette, regions, pose/depth/edge control, upscale, detail, ...). They
match English; other languages come through :mod:`agents.lexicon`.
"""

from __future__ import annotations

import re


def _words(*words: str) -> str:
    """A regex matching any of ``words`` as whole words, plurals included."""
    return r"\b(?:" + "|".join(words) + r")(?:e?s)?\b"


# what a user calls a picture they give ("this portrait", "my selfie", "the render I attached");
# only after a determiner that points at it, so "a portrait of a woman" stays a text prompt
PICTURE = (r"(?:photos?|images?|pictures?|pics?|drawings?|sketch(?:es)?|selfies?|renders?|renderings?|"
           r"scans?|screenshots?|fotos?|snapshots?|photographs?|portraits?|paintings?|illustrations?|"
           r"artworks?|art ?work|shots?|headshots?|photo ?shoots?|line ?art|frames?|stills?|"
           r"captures?|snaps?|photo|jpe?g|png|drafts?|mock-?ups?|pfps?|screencaps?|screengrabs?|fan ?arts?|"
           r"doodles?|slides?|photies?|imgs?|"
           r"(?:card|cover|concept|key|box|album|pixel|fan) ?arts?(?! ?style))(?! life)")


# the white area of a mask, in several languages
_WHITE_AREA = (r"(?:\bwhite (?:area|region|part|zone|spot|shape|space)s?\b|\b(?:area|bagian|daerah|"
               r"bidang) putih\b|"
               r"\b(?:vùng|phần|khu vực|vung|phan|khu vuc) (?:màu |mau )?(?:trắng|trang)\b|"
               r"\b(?:puti nga (?:parte|bahin|dapit)|(?:parte|bahin|dapit) nga puti|puting bahagi|"
               r"bahaging puti)\b|(?:ال)?(?:منطقة|مساحة|جزء) (?:ال)?(?:بيضاء|"
               r"أبيض|ابيض)|"
               r"\bbia[łl]\w* (?:obszar|pol|miejsc)\w*|\b(?:obszar|pol|miejsc)\w* bia[łl]\w*|"
               r"\bbíl\w* (?:oblast|část|plo)\w*|бел\w* (?:област|част|зон)\w*|λευκ\w* (?:περιοχ|μέρ)\w*|"
               r"\bbeyaz (?:alan|bölge|kısım)\w*|\bvita (?:området|ytan|delen)\b|\bwitte (?:gebied|"  # noqa: RUF001
               r"vlak|deel)\b|"
               r"흰\s?(?:부분|영역|곳)|하얀\s?(?:부분|영역|곳))")


_RULES: dict[str, str] = {
    "people": _words(
        "person", "people", "man", "men", "woman", "women", "girl", "boy", "child", "children",
        "kid", "baby", "portrait", "face", "selfie", "crowd", "couple", "family", "astronaut",
        "soldier", "dancer", "musician", "chef", "king", "queen", "warrior", "knight", "lady",
        "gentleman", "student", "worker", "athlete", "bride", "groom", "human", "fisherman",
        "farmer", "teenager", "grandmother", "grandfather", "doctor", "nurse", "witch", "wizard",
        "princess", "prince", "samurai", "ninja", "cowboy", "detective", "pilot",
        "character", "mother", "father", "he", "she", "businessman", "businesswoman",
    ),
    "animals": _words(
        "cat", "dog", "kitten", "puppy", "pupp(?:y|ies)", "horse", "bird", "rabbit", "bunny", "pet",
        "animal", "cow", "sheep", "pig", "hamster", "parrot", "goldfish", "chicken", "duck",
        "goat", "pony", "corgi", "poodle", "retriever",
    ),
    "wildlife": _words(
        "fox", "wolf", "wolves", "bear", "deer", "lion", "tiger", "elephant", "giraffe", "zebra",
        "eagle", "leopard", "cheetah", "wildlife", "safari", "whale", "dolphin", "moose", "elk",
        "rhino", "hippo", "gorilla", "monkey", "penguin", "owl", "hawk", "falcon", "otter",
        "seal", "orca", "shark", "bison", "lynx", "jaguar", "hummingbird", "heron",
    ),
    "nature": _words(
        "forest", "tree", "flower", "garden", "meadow", "river", "waterfall", "jungle", "leaf",
        "leaves", "plant", "woods", "moss", "blossom", "fern", "grass", "wildflower", "nature",
        "rainforest", "stream", "mushroom",
    ),
    "landscapes": _words(
        "landscape", "mountain", "lake", "valley", "canyon", "desert", "ocean", "sea", "beach",
        "coast", "sunset", "sunrise", "dawn", "dusk", "horizon", "vista", "hill", "glacier",
        "island", "aurora", "fjord", "cliff", "dune", "volcano", "seascape", "countryside",
        "panorama", "scenery",
    ),
    "urban": _words(
        "city", "cities", "street", "skyline", "building", "skyscraper", "downtown", "alley",
        "cityscape", "town", "market", "subway", "traffic", "neon", "cafe", "architecture",
        "harbour", "harbor", "bridge", "tokyo", "new york", "paris", "rooftop", "metropolis",
    ),
    "objects": _words(
        "product", "bottle", "chair", "car", "watch", "shoe", "sneaker", "lamp", "vase", "cup",
        "mug", "phone", "bench", "furniture", "toy", "book", "guitar", "bicycle", "camera",
        "object", "still life", "perfume", "jewel(?:le)?ry", "ring", "teapot", "sofa", "table",
        "robot", "helmet", "sword", "clock", "backpack",
    ),
    "food": _words(
        "food", "dish", "meal", "pizza", "burger", "cake", "bread", "fruit", "sushi", "coffee",
        "breakfast", "salad", "pasta", "soup", "dessert", "cookie", "ramen", "croissant",
        "pancake", "cupcake", "steak", "taco", "noodle", "ice cream", "chocolate",
    ),
    "photo-realistic": (
        r"\b(?:photo(?:graph|graphy)?s?|photo-?realistic|photoreal|realistic|hyper-?realistic|dslr|"
        r"35 ?mm|50 ?mm|85 ?mm|bokeh|cinematic|raw photo|film still|telephoto|macro shot|"
        r"award[- ]winning photo)\b"
    ),
    "painting": (
        r"\b(?:painting|painted|oil|watercolou?r|acrylic|impressionis[tm]|canvas|gouache|"
        r"brush ?strokes?|van gogh|monet|rembrandt|fresco|baroque)\b"
    ),
    "illustration": (
        r"\b(?:illustration|illustrated|drawing|drawn|sketch|cartoon|vector|comic|line art|"
        r"storybook|children'?s book|concept art|flat design|pencil|ink|pixel art|low poly|"
        r"isometric|clip ?art|icon|logo)\b"
    ),
    "anime": r"\b(?:anime|manga|chibi|ghibli|cel[- ]shaded|kawaii|waifu|shonen|shojo)\b",
    "detailed": (
        r"\b(?:highly detailed|ultra[- ]detailed|hyper[- ]detailed|intricate|detailed|"
        r"fine details?|sharp focus|masterpiece|best quality)\b"
    ),
    "edit": (
        r"\b(?:remove|replace|erase|retouch|inpaint(?:ing)?|fix (?:the|her|his)|"
        r"fill in|clean up)\b"
    ),
    "wide": (
        r"パノラマ|全景|파노라마|بانورام|پانورام|פנורמ|पैनोरमा|พาโนรามา|πανοραμ|панорам|toàn cảnh|"
        r"\b(?:panor[aáâ]m\w*|widescreen|banner|ultra-?wide|"
        r"wide[- ](?:format|aspect(?: ratio)?|image|picture|crop|banner|wallpaper|screen|frame|poster)|"
        r"(?:landscape|horizontal) (?:[\w:-]+ ){0,2}?(?:format|orientation|mode|image|poster|banner|print|"
        r"wallpaper|picture|shot|flyer|cover|card)|(?:landscape|horizontal)[- ]orient(?:ed|ation)|"
        r"header image|360[- ]degree|"
        r"cinematic (?:aspect|ratio|format))\b|"
        r"\b(?:16|21|32)\s*:\s*9\b|\b[2-8]\s*:\s*1\b|\b16\s*:\s*10\b"
    ),
    "tall": (
        r"\b(?:vertical (?:[\w:-]+ ){0,2}?(?:format|orientation|image|poster|banner|wallpaper|picture|shot|"
        r"print|flyer|cover|card)|vertical$|portrait[- ]orient(?:ed|ation)|"
        r"portrait (?:format|orientation|mode)|tall (?:image|format|poster|banner|picture|frame)|"
        r"phone wallpaper|mobile wallpaper|story format|instagram story)\b|"
        r"\b9\s*:\s*(?:16|21|32)\b|\b1\s*:\s*[2-8]\b"
    ),
    # a picture larger than a model draws at once; "4k", "8k", "poster", "wallpaper" are quality tags
    # or content (a pixel size too large for one pass sets it in agents.request / planner)
    "large": (
        r"\b(?:gigapixel|(?:very |extra )?(?:large|huge|big) (?:image|picture|size|resolution)|"
        r"as (?:big|large) as (?:you can(?: go| make it)?|possible|it (?:can|gets))|"
        r"(?:do|make|render) it in tiles|"
        r"(?:large|huge|big)[- ]format print)\b"
    ),
    "inpaint": (
        r"(?:^|[.;!,:]\s*|\b(?:please|can you|could you|then|and)\s+)(?:remove|replace|erase|delete) the\b|"
        r"\b(?:inpaint(?:ing)?|mask(?![- ]?like\b)|fill in the|"
        r"masked(?! (?:man|men|woman|women|bandit|hero|vigilante|figure|stranger|rider|dancer|ball|singer|"
        r"killer|warrior|knight|assassin|ninja|samurai|person|people|crowd|character|girl|boy|wrestler|"
        r"luchador|thief|robber|gunman|gunmen|avenger)s?\b)|"
        r"(?:in|on) the (?:masked|marked|white) (?:area|region)|fix the (?:face|hand|region|area))\b"
    ),
    "image-to-image": (
        # "give this one an old film look", "make dis one winter": the picture given, by a pointer alone
        r"(?:^\s*|\b(?:please|pls|plz|can (?:you|u)|could (?:you|u))\s+)"
        r"(?:make|give|turn|change|edit|fix|redo|restyle|convert)\s+(?:this|that) one\b"
        r"(?! a (?:try|go|shot))|"
        r"\b(?<!design )(?<!create )(?<!generate )(?<!invent )"  # "design my logo": a new one
        # "for our website hero image": the picture's purpose, not a given one
        r"(?:(?:this|these|(?<!for )my|(?<!for )our|the (?:input|given|attached|uploaded|provided)|attached) "
        r"(?:[a-z&/'-]+ ){0,2}" + PICTURE + r"\b|input image|"
        # "the photo is the first file", "upscal the atached 2x": the attachment named by its place alone
        r"\bthe (?:photo|image|picture|pic) is the (?:first|1st|second|2nd|other) "
        r"(?:file|one|attachment|upload)\b|"
        r"\b(?:the|my) (?:attached|uploaded)(?=\s*(?:$|[,.;!?)]|\d|(?:pls|please|one|to|and|in|for|into)\b))|"
        r"img2img(?! (?:look|style|vibe|feel|aesthetic))|"
        r"\bthe (?:[a-z]+ ){0,2}" + PICTURE + r" "
        r"(?:that |which )?(?:i|we)(?:'ve| have| had)?(?: just| already)? "
        r"(?:attached|uploaded|sent|shared|gave|took|shot|posted|added|dropped|pasted|included|provided)\b|"
        r"\bthe one (?:that )?(?:i|we)(?:'ve| have| had)?(?: just| already)? "
        r"(?:attached|uploaded|sent|shared|"
        r"dropped|pasted|posted|added|included|provided)\b|\bsee (?:the )?attached\b|"
        r"\b(?:as|for) (?:the |an? |my )?(?:init(?:ial)?|source|base|starting|input) "
        r"(?:image|picture|photo|img)\b|"
        # "Attached is a black and white photograph of my crew", "fix the hands on this pls"
        r"\battached (?:is|are|here is) (?:a |an |the |my |our )?(?:[\w&/'-]+ ){0,4}?" + PICTURE + r"\b|"
        r"\b(?:on|in|of|to) this (?=(?:pls|plz|please|one)\b)|\b(?:on|in) this\s*[?!.]*\s*$|"
        # "need the product image upscaled", "the label image retouched": a picture done something to
        r"\b(?:the|my|this|our) (?:[a-z]+ ){0,2}" + PICTURE + r" (?:upscaled|enlarged|retouched|restored|"
        r"sharpened|cleaned up|colou?ri[sz]ed|fixed|edited|touched up)\b|"
        # "same shot of the Lánchíd I sent", "that pic i just dropped": what the user sent is given
        r"\b(?:that|this|the) "
        r"(?:(?!(?:masks?|maps?|depth|pose|skeleton|palette|swatch|scribble|canny|edges?)\b)"
        r"[\w&/'-]+ ){1,6}?(?:i|we)(?:'ve| have)?(?: just| already)? (?:sent|attached|"
        r"uploaded|dropped|shared|posted)(?! (?:a |an |the |my )?(?:mask|map|depth|pose|skeleton|palette|"
        r"swatch|scribble|line ?art|canny|edge)s?\b)|"
        r"\bhere(?:'s| is|s| are) (?:a |an |my |the |our )?(?:[a-z0-9/&-]+ ){0,3}" + PICTURE + r"\b|"
        # a flaw of an existing picture said ("the photo blur a bit", "the foto is small small", "my scan is
        # too dark"); "i got an old b&w pic of my avô"
        r"\b(?:the|this|that|my|our) " + PICTURE + r" (?:is |was |looks |came out |got |are |r )?"
        r"(?:(?:a bit |too |so |very |really |kinda |quite |all |super |pure )?"
        r"(?:blurr?y?|blurred|small|tiny|grainy|pixelated|"
        r"pixelly|faded|damaged|torn|scratched|low[- ]?res|washed out|overexposed|underexposed|noisy|"
        r"out of focus|crooked|cut off|cropped)|(?:too|so|very|really|kinda|quite|a bit) dark)\b|"
        r"\b(?:i |we )?(?:got|have|found) (?:a|an|this|my|our) (?:[a-z&/'-]+ ){0,3}?" + PICTURE
        + r" (?:of|from) (?:my|our|me|us)\b|"
        # the picture as a place ("the hand in the shot", "the guy on the pic", "in this one")
        r"\b(?:in|on) the (?:pic|pics|shot|photo|snap|snapshot|selfie|screenshot|scan|fotos?|fotka|fotku)\b"
        r"(?!\s*(?:booth|frame|album|studio|shoot|op|finish|quality|style|journalism|realism)\b)|"
        r"\b(?:in|on|from|of|to) this (?:one|wan)\b|"
        # "colour this black and white photo of my late dad", "the masked area of the photo"
        r"\b(?:this|my|our|the attached|the uploaded) (?:old |faded |little )?"
        r"(?:black (?:and|n|&) white|b ?& ?w|b/w|"
        r"sepia) (?:photo|pic|picture|image|photograph|photie)s?\b|"
        r"\bmasked (?:area|spot|part|region|bit|zone) (?:of|in|on) (?:the|my|this) "
        r"(?:photo|pic|picture|image|"
        r"shot)\b|"
        # an old black-and-white photo to colour ("ee pazhaya black n white photo ... colour aakki tharamo")
        r"\b(?:black (?:and|n|&) white|b ?& ?w|b/w|sepia)\s+(?:photo|pic|picture|image|foto|snap|"
        r"photograph)s?\b[^.;!?]{0,80}?\bcolou?r(?:i[sz]e)?\s*(?:it|this|that|them|in|up|aakki|aaki|karo|kar|"
        r"kardo|kardi|pannu\w*|cheyy\w*|maadi|laga\w*|please|pls|plz|\?)(?!\w)|"
        # "uplaoded a pic of my nails can u turn it into watercolor"
        r"^\W*(?:(?:i|we) )?(?:just )?(?:uploaded|attached|sent|added) (?:you )?(?:a|an|my|the|this|our) "
        r"(?:[\w'-]+ ){0,2}?" + PICTURE + r"\b|"
        # "same car photo but in winter", "I've scanned a 35mm slide of my parents' wedding"
        r"\bsame (?:[\w'-]+ ){0,3}?(?:photo|pic|picture|image|shot|selfie|render)s?"
        r"(?: of (?:the |my |our )?[\w'-]+(?: [\w'-]+)?)? but\b|"
        r"\b(?:i|we)(?:'ve| have)? (?:just |already )?scanned\b|"
        # "I have two files for you", "here are 2 photos": the user gives them
        r"\b(?:i have|i've got|i got|got|here are|here's|heres|sending|attaching|uploading|sent|attached|"
        r"uploaded) (?:you )?(?:2|two|both|3|three) (?:files|pics|pictures|photos|images|attachments)\b|"
        # "took this one at the album shoot", "the attachment is a 512px photo"
        r"\b(?:i |we )?(?:took|shot|snapped) this one\b|"
        r"\b(?:the|this|my|see) attachment\b(?! (?:is |has )?(?:a |an |the |my )?(?:[a-z]+ )?(?:mask|map|"
        r"depth|pose|skeleton|palette|swatch|scribble)s?\b)|"
        r"\b(?:edit|fix|enhance|upscale|improve|retouch|restore|colou?rize|sharpen) this one\b|"
        r"\bfrom my (?:camera roll|phone|gallery|camera)\b|"
        r"(?<!\bno )(?<!\bnot )\(?(?:image|photo|shot|pic|picture|selfie|scan|screenshot|render|sketch|"
        r"drawing|painting|doodle)"
        r"(?:\s*(?:\+|&|and|with)\s*(?:the\s+|a\s+)?mask)? (?:are |is )?attached\)?|"
        # "bride blinked in the attached", "see the uploaded": the picture named by its participle alone
        r"\b(?:the|this|my|our) (?:attached|uploaded|enclosed) (?!(?:[a-z]+ )?(?:mask|map|depth|pose|"
        r"skeleton|palette|swatch|scribble|line ?art|canny|edge|file)s?\b)[a-z]+|"
        r"\b(?:in|on|from|see|of) the (?:attached|uploaded|enclosed)\b"
        r"(?! (?:[a-z]+ )?(?:mask|map|depth|pose|skeleton|palette|swatch|scribble|line ?art)s?\b)|"
        # a file the user names ("tweak portrait_final.jpg"); maps and masks by name are other inputs
        r"(?<![/\\.\w-])(?![\w-]*(?:mask|depth|canny|edge|pose|lineart|scribble|normal|seg)[\w-]*\.)[\w-]+\."
        r"(?:png|jpe?g|webp|bmp|tiff?|heic)\b|"
        r"restyle|re-?draw|(?:turn|make) this\b|"
        r"(?:turn|make) my (?:[\w'-]+ ){0,2}?(?:photo|image|picture|drawing|sketch|pic|selfie|portrait)s?\b|"
        # a picture named first, then edited by pronoun ("old tattoo photo, colours faded - make it
        # fresh", "latte art pic from this morning, ... extend it downward", "the couple's shot: ...
        # can u fix his face"); "portrait photo, 85mm" (no edit of it) stays a text prompt
        r"^\W*(?:(?:the|my|our|his|her|their|this) )?"
        r"(?:(?!(?:a|an|some|need|want|make|create)\b)[\w'-]+ ){0,4}?"
        r"(?:photo|pic|shot|picture|image|selfie|screenshot|scan|snap|photograph)s?\b(?! of\b)[^!?]{0,160}?"
        r"\b(?:(?:make|turn|get|extend|fix|change|edit|colou?r|clean|restore|sharpen|brighten|crop|expand|"
        r"enhance|redo|retouch|blow|upscale|enlarge|scale) (?:it|its|this|them)\b|"
        r"(?:can|could) (?:you|u) (?:please )?(?:fix|repair|restore|clean|sharpen|remove|extend|colou?r))|"
        # a picture told by what it shows and how it is ("the photo of the shelf is cropped too tight",
        # "the selfie of me n lola is blurry")
        r"(?:\bthe |^\W*)(?:[\w'-]+ ){0,2}?(?:photo|pic|picture|image|shot|selfie|snap|photograph|scan) of "
        r"(?:the |my |our |me\b|us\b|his |her |their )[^.;!?]{0,40}?"
        r"\b(?:is|was|looks|came out|got|has|have|are)\b|"
        # a logo the user shows ("here's my logo, make it embossed"), not one to draw ("pixel art of our
        # fandom logo as a neon sign")
        r"\bhere(?:'s| is) (?:a |an |my |the |our )?(?:[a-z]+ ){0,2}logos?\b|"
        r"\b(?:this|the attached|attached|the uploaded) (?:[a-z]+ ){0,2}logos?\b|"
        # "make the terrace shot wider", "widen my beach photo"
        r"\b(?:make|extend|widen|expand) (?:the|my|this|our) (?:[\w'-]+ ){0,2}?"
        r"(?:photo|shot|pic|picture|image)s? "
        r"(?:wider|taller|bigger|longer)\b|"
        # a picture taken up by a verb ("take the photo of our students and make it ...", "use my selfie"),
        # or one the user got ("got a frame from the first dance")
        r"\b(?:take|use|grab|using) (?:the|this|that|my|our) (?:[\w'-]+ ){0,2}?"
        r"(?:photo|pic|picture|image|shot|selfie|screenshot|frame|scan|snap)s?\b(?! of (?:a|an)\b)|"
        r"^\W*(?:i |we )?(?:got|grabbed) (?:a|an|this|one) (?:[\w'-]+ ){0,2}?"
        r"(?:frame|photo|pic|shot|snap|screenshot|still|scan|selfie)s? (?:from|of)\b|"
        # a picture someone sent ("client sent a photo of her forearm", "my mum sent me this pic")
        r"\bsent (?:me |us )?(?:a|an|this|the|that|these|some) (?:[\w'-]+ ){0,2}?(?:photo|pic|picture|image|"
        r"selfie|screenshot|scan|snap|shot)s?\b|"
        r"based on the (?:image|photo))|"
        # "picture A", "image 2", "the second image": pictures the user gives, by name
        r"\b(?:image|picture|photo|pic) (?:[ab12]|one|two)\b(?! (?:of|to)\b)|"
        r"\bthe (?:first|second|other|2nd) (?:image|picture|photo|pic)\b|"
        r"\b(?:first|second|third|1st|2nd|3rd) (?:image|picture|photo|pic|shot)s? (?:is|shows|has)\b|"
        # "the image below", "I'm sending you a photo of my car", "the photo I'm attaching", "[image]"
        r"\bthe " + PICTURE + r" (?:below|above|here)\b|"
        r"\b(?:i'?m|i am|we'?re|i'?ll|i will|i've|i have) (?:just )?(?:sending|attaching|uploading|giving|"
        r"sharing|send|attach|upload|give|share|sent|attached|uploaded|given|shared)(?: you)? "
        r"(?:a |an |my |the |our )?(?:[a-z]+ ){0,2}" + PICTURE + r"\b|"
        r"\bthe (?:[a-z]+ ){0,2}" + PICTURE + r" (?:i'?m|i am|we'?re|i'?ll) "
        r"(?:sending|attaching|uploading|giving|sharing)\b|"
        r"[\[<](?:image|photo|picture|attached image|img)[\]>]|"
        # an edit told to "the photo" at the start: "change the background of the photo to a beach"
        r"(?:(?:^\s*|\b(?:please|pls|plz|can (?:you|u)|could (?:you|u))\s+)"
        r"(?:make|change|edit|turn|convert|transform|give|adjust|apply)|"
        # an edit of what is there, after any clause ("..., colour the b/w photo")
        r"(?:^\s*|[.;:!?,\u2013\u2014-]\s*|\b(?:please|pls|plz|can (?:you|u)|could (?:you|u))\s+)"
        r"(?:brighten|darken|enhance|retouch|fix|restyle|sharpen|crop|recolou?r|colou?r|colou?ri[sz]e|"
        r"restore|repair|clean|upscale|extend|expand|widen|remove|erase|replace|blur|unblur|denoise))\b[^.;]{0,40}?"
        # "restore this damaged old family photo": an edit verb before, more words between
        r"\b(?:the|my|this) (?:[a-z]+ ){0,3}"
        r"(?:image|photo|picture|pic|shot|photograph|render|drawing|sketch|selfie|scan)\b"
        # "make the image 4000 px wide": the output, not a given picture
        r"(?!\s+\d{3,6}\s*(?:px|pixels?|x\b|by\b|wide|tall|high))"
    ),
}


COMPILED = {label: re.compile(rx, re.IGNORECASE) for label, rx in _RULES.items()}


_IMG = r"(?:image|picture|photo|photograph|pic|painting|reference|ref|example|file|one)"


_GIVEN = r"(?:this|the|my|that|our|attached|given|uploaded|provided|second|other|reference|input)"


_ART_STYLE = r"(?:painting|picture|image|photo|illustration|drawing|artwork|print|poster|pic)s?"


# what a verb that also means "enlarge" raises when it is no upscale ("увеличь яркость",
# "vergroot het contrast")
_TONE = (r"(?:яркост|контраст|насыщенност|резкост|ч[её]ткост|экспозици|количеств|число|"
         r"contrast|helderheid|verzadiging|scherpte|belichting|brightness|saturation|exposure|"
         r"contraste|brillo|saturaci|contrasto|luminosit)\w*")


_INTENT_RULES: dict[str, str] = {
    "style": (
        r"\bstyle transfer\b|\bin the style of (?:this|that|the attached|the given|the uploaded|my)\b|"
        r"\bpainted by the (?:artist|painter) (?:of|in) (?:this|the)\b|"
        r"\b(?:in|with|using|after) the style of (?:the |this |my |that )?"
        r"(?:attached |given |uploaded |provided |second |other |reference )" + _IMG + r"\b|"
        r"\bstyle (?:image|reference|ref)\b|"
        r"\b(?:match(?:ing)?|copy(?:ing)?|use|take|apply|borrow|transfer|keep) (?:the |its |that )?style\b|"
        r"\bstyled? like (?:the |this |my )?(?:reference|attached|given|second|other)\b|"
        r"\b(?:style|look|aesthetic|feel) of (?:the |this |my )?"
        r"(?:reference|attached|given|uploaded|second|other) (?:[\w'-]+ ){0,2}?" + _IMG + r"\b|"
        r"\b(?:style|look|aesthetic|feel) of (?:this|that) (?:[\w'-]+ ){0,2}?"
        r"(?:painting|artwork|illustration|print|woodcut|drawing|poster|reference)\b|"
        r"\b(?:use|using|take|taking) (?:this|that|the (?:attached|second|other)|my) (?:[\w'-]+ ){0,2}?"
        r"(?:image|picture|photo|painting|artwork|one) as (?:a |the )?(?:style )?reference\b|"
        r"\bas (?:a |the )?style reference\b|"
        # "in the style of the painting I'm attaching"
        r"\bstyle of (?:the|this|my) (?:[\w'-]+ ){0,2}?" + _ART_STYLE
        + r" (?:that )?(?:i|we)(?:'m|'ve| am| have)? "
        r"(?:just )?(?:attach|send|sent|upload|shar|giv|gave|includ|add)\w*|"
        r"\bim stil (?:dieses|des beigef[üu]gten|des angeh[äa]ngten|des zweiten|meines)\b|"
        # "mach mein Foto in genau diesem Stil", "dans ce style", "in questo stile", "w tym stylu"
        r"\bin (?:genau |exakt )?(?:diesem|demselben|dem gleichen) stil\b|\bdans (?:ce|le m[êe]me) style\b|"
        r"\b(?:en|con) (?:este|ese|el mismo) estilo\b|\bin questo stile\b|"
        r"\b(?:neste|nesse|no mesmo) estilo\b|"
        r"\bin (?:deze|dezelfde) stijl\b|\bw tym (?:samym )?stylu\b|(?<!\w)в (?:этом|том же) стиле\b|"
        r"\bi (?:den här|samma) stil\b|\bv tomto stylu\b|\bbu tarzda\b|"
        r"\bdans le style de (?:cette|cet|ce|l'image|la photo|la deuxi[èe]me)\b|"
        r"\b(?:al|en el) estilo de (?:esta|este|la segunda|la otra|la imagen adjunta)\b|"
        r"\bnello stile di (?:questa|questo|quest'|la seconda)\b|\bno estilo (?:desta|deste|da segunda)\b|"
        r"(?:この|その|添付の|2枚目の)(?:画像|写真|絵)の(?:スタイル|画風|タッチ)|"
        r"(?:参考图|这张图|第二张图|这幅画)的(?:风格|画风)"
    ),
    "palette": (
        r"\bpalettes?\b|\bcolou?ri[sz](?:e|ed|ing|ation)\b|\brecolou?r(?:ed|ing)?\b|"
        r"\b(?:paleta|tavolozza|farbpalette|palette de couleurs)\b|\bcolore(?:a|ar)\b|"
        r"\bcolori(?:ser|se|ez)\b|"
        r"\b(?:kolorier\w*|einf[äa]rb\w*|colorare|colora|colorir|colorize)\b|调色板|配色|パレット|上色|着色|カラー化|"
        # pl, cs, ru, tr, sv, nl, el, vi: colourise, a palette
        r"\bpalet(?:a|y|ę|ie|u|te|ten|t|ti)?\b|\bpalett(?:en)?\b|палитр\w*|παλέτα|bảng màu|"
        r"\bpokoloruj\w*|\bkoloruj\w*|\bvybarv\w*|раскрас\w*|\brenklendir\w*|\bfärglägg\w*|\binkleur\w*|"
        r"χρωμάτισ\w*|(?<!\w)tô màu|"
        # the colours of another picture the user sends: el, ru, id/ms
        r"χρώματα (?:της|μιας|από (?:την|μια)|του) (?:\w+\s+){0,2}?(?:εικόν|φωτογραφ|πίνακ)\w*|"
        r"(?<!\w)цвет\w* (?:(?:с|из|как на|как в|со) )?(?:друг\w*|втор\w*|приложенн\w*) "  # noqa: RUF001
        r"(?:фото|картин|изображени|снимк|кадр)\w*|"
        r"\bwarna (?:dari )?(?:gambar|foto) (?:lain|kedua|yang (?:aku|saya) kirim)\b|"
        r"\bcolou?r scheme (?:of|from) (?!the\b)" + _GIVEN + r"\b|"
        r"\bcolou?rs (?:of|from) (?!the\b)" + _GIVEN + r"\b|"
        r"\bcolou?rs? (?:of|from) the (?:attached|given|uploaded|provided|second|other|reference|palette|"
        r"2nd|3rd|third|first|1st|last)\b|"
        r"\bcolou?rs? (?:to )?(?:come|taken) from the (?:[\w'-]+ ){0,2}?(?:photo|image|picture|pic|shot)\b|"
        r"\bcolou?rs? (?:from|out of) the (?:[\w'-]+ ){0,2}?(?:photo|image|picture|pic|shot|file|one)\b|"
        # "I'd like the colours soft and faded like in this other photo I'm sending"
        r"\bcolou?rs?\b[^.;!?]{0,50}\b(?:like|as|from|of) (?:in |on )?(?:this|that|the|my|our) "
        r"(?:other|second|attached|reference|sample|example) (?:[\w'-]+ )?"
        r"(?:photo|image|picture|pic|one)\b|"
        r"\b(?:brand|our|company|corporate) colou?rs\b[^.;!?]{0,30}"
        r"\b(?:swatch|colou?r chart|palette image)\b|"
        # a swatch or colour chart the user gives ("the colours in the swatch image I attached")
        r"\b(?:colou?r )?swatch(?:es)?\b|\bcolou?r (?:chart|card)s?\b"
    ),
    "regions": (
        r"\b(?:on|at|to) the (?:left|right)\b|\b(?:left|right) (?:side|half)\b|\b(?:left|right)\s*:|"
        r"\bside[- ]by[- ]side\b|\b(?:top|bottom|upper|lower) half\b|\b(?:in|at) the (?:top|bottom) "
        r"(?:half|part)\b|\b(?:at|on|in) the top\b.*\b(?:at|on|in) the bottom\b|"
        r"\b(?:at|on|in) the bottom\b.*\b(?:at|on|in) the top\b|"
        r"\bregional prompt|\barea composition\b|\bcomposed of two regions\b|"
        r"\b(?:top|bottom|upper|lower)[- ](?:part|portion|third|section|area)\b(?!\s+of\b)"
        r".*\b(?:top|bottom|upper|lower)[- ](?:part|portion|third|section|area)\b|"
        r"\b(?:top|bottom|upper|lower)[- ](?:left|right)(?: corner)?\b(?!\s+of\b).*"
        r"\b(?:top|bottom|upper|lower)[- ](?:left|right)\b|"
        r"(?:^|[,;.]\s*)(?:top|bottom|upper|lower)\s*:.*[,;.]\s*(?:top|bottom|upper|lower)\s*:"
    ),
    "mask-region": (
        # "in a mask" (worn: "a woman in a mask at a carnival") is no mask the user gives
        r"\b(?:in|inside|within|into|onto|over|on|to)\s+(?:exactly\s+|only\s+|just\s+)?"
        r"(?!an?\s+(?:[\w-]+\s+)?masks?\b)(?:the|my|this|that|a|our)\s+(?:(?:white|masked|marked|painted|drawn|black)\s+)?"
        r"(?:(?:area|region|part|zone|spot|shape|space|section|portion|outline|circle|square|oval|blob)\s+"
        r"(?:of|in|on|inside|covered by|given by|marked by|defined by|shown by|that)\s+"
        r"(?:the|my|this|a|our)\s+)?(?:mask(?:ed)?|marked|white)\b|"
        r"\bwhere (?:the|my|this|our) mask (?:is|says|shows|marks)\b|"
        r"\b(?:the|my|this) mask (?:marks|shows|says|indicates|defines|tells) where\b|"
        r"\b(?:confined|limited|restricted) to (?:the|my|this) mask\b|"
        r"\b(?:use|using|with|following|per) (?:the|my|this) mask (?:to|for|as)\b|"
        # "I drew a mask where the balloon should go", "only where my mask shape is",
        # "inside the shape I masked"
        r"\b(?:drew|drawn|painted|made|marked)\s+(?:a|the|my)\s+mask\s+(?:where|for where|to show where|"
        r"over where|around where)\b[^.;]{0,50}\b(?:should|will|goes|go|must|to)\b|"
        r"\bwhere (?:the|my|this|our) mask(?:'s)? (?:shape|area|region|outline|white)? ?"
        r"(?:is|says|shows|marks)\b|"
        r"\b(?:in|inside|within|into) the (?:shape|area|region|part|spot|outline) (?:that )?(?:i|we)(?:'ve)? "
        r"(?:masked|marked|painted|drew|outlined)\b|"
        r"마스크(?:의|에서)?\s?(?:흰|하얀)\s?(?:부분|영역|곳)|マスク(?:の)?白い(?:部分|領域|ところ)|"
        r"(?:蒙版|遮罩)(?:的)?白色(?:区域|部分|區域)|\b(?:dans|sur) la zone blanche du masque\b|"
        r"\ben la zona blanca de la m[áa]scara\b|\bim wei(?:ß|ss)en bereich der maske\b|"
        r"\bnella zona bianca della maschera\b|\bna [áa]rea branca da m[áa]scara\b|"
        # "nur innerhalb des Kreises der Maske", "dans le cercle du masque", "внутри круга маски"
        r"\b(?:innerhalb|im|in)\s+(?:des|dem|der)\s+(?:wei(?:ß|ss)en\s+)?\w+\s+der\s+maske\b|"
        r"\bdans (?:le|la) (?:cercle|forme|zone|partie|r[ée]gion) (?:blanche? )?du masque\b|"
        r"\bdentro (?:del|de la) (?:c[íi]rculo|forma|zona|[áa]rea) de la m[áa]scara\b|"
        r"\bdentro (?:il|del|la|della) (?:cerchio|forma|zona|area) della maschera\b|"
        r"\bdentro d[oa] (?:c[íi]rculo|forma|zona|[áa]rea) da m[áa]scara\b|"
        r"\bbinnen (?:de|het) (?:cirkel|vorm|zone|gebied) van (?:het|de) masker\b|"
        r"внутри\s+(?:белого\s+)?(?:круга|области|формы|контура)\s+маски|"
        r"\bw(?:ewnątrz)?\s+(?:kółk\w*|okręg\w*|obszar\w*)\s+mask\w*|"
        # a mask the user sends and its white area, in any order and language ("Pakai mask yang aku
        # kirim: X di area putih", "dùng mặt nạ tôi gửi: ... vùng trắng", "القناع المرفق ... المنطقة البيضاء")
        r"(?:\bmask\w*|m[ặa]t n[ạa]|(?:ال)?قناع|маск\w*|μάσκ\w*|m[áa]scara|maschera|masque|masker|maske)"
        r"[^.;!?]{0,80}?" + _WHITE_AREA + r"|" + _WHITE_AREA + r"[^.;!?]{0,40}?"
        r"(?:\bmask\w*|m[ặa]t n[ạa]|(?:ال)?قناع|маск\w*|μάσκ\w*|m[áa]scara|maschera|masque|masker|maske)"
    ),
    # a pose to follow, not a pose described ("a dramatic pose", "a heroic pose")
    "pose": (
        r"\b(?:openpose|open pose|posed like|(?:same|exact|identical) pose|"
        # "a stick figure drawing of a family": a style of drawing, not a pose to follow
        r"stick figure(?!s?\s+(?:drawings?|style|art|comics?|doodles?|animations?|cartoons?|"
        r"illustrations?|family|families|of)\b)|"
        r"(?:pose|body|openpose) (?:map|skeleton|image|reference|control|estimation)|"
        r"(?:this|the attached|my|the given|the uploaded) skeleton|"
        r"(?:match(?:es|ing)?|follow(?:s|ing)?|copy(?:ing)?|use|using|take|taking|keep(?:ing)?|mimic(?:king)?|"
        r"mirror(?:ing)?) (?:the |this |my |that |her |his |its |their )?(?:exact )?pose|"
        r"(?:in|with|from|into) the (?:exact )?pose (?:of|from|in|shown)|"
        r"pose (?:of|from|in) (?:this|my|"
        r"the (?:attached|given|uploaded|reference|person|photo|image|picture))|"
        r"as the pose)\b"
    ),
    "control": (
        r"\bcontrol ?net\b|\bcontrol (?:image|map)\b|\b(?:follow|keep|use|match) the (?:layout|composition) "
        r"(?:of|from)\b|\blayout (?:of|from) " + _GIVEN
    ),
    # "depth of field" / "shallow depth" are photography words, not a depth map to keep
    "depth": (r"\bdepth(?! of field)(?: map| maps| estimation| control|-guided| guided)?\b(?<!shallow depth)"
              r"(?<!deep depth)|\b3d layout\b|\bsame depth\b|(?<!\w)bố cục 3d(?!\w)|\bbo cuc 3d\b"),
    "edges": (
        r"\b(?:canny|edge map|edges|outlines?|line ?art|lineart|contours?|scribble)\b|"
        r"\b(?:from|of|turn|colou?r) (?:this|my|the) (?:sketch|drawing|doodle)\b|\bsketch to\b|"
        r"\bfollow(?:ing|s)? (?:these|those|the|my|its|all the) (?:exact )?lines\b|"
        # ar "the edges of the attached picture", id/ms, vi, ko
        r"(?<!\w)(?:ال)?(?:حواف|الحواف|خطوط (?:ال)?خارجية)|\b(?:garis )?tepi(?:an)?\s+(?:foto|gambar)\w*|"
        r"\b(?:kontur|outline) (?:foto|gambar)\w*|(?<!\w)(?:đường viền|đường nét|các cạnh)(?!\w)|윤곽선|"
        r"외곽선"
    ),
    "upscale": (
        r"\bup-?scal(?:e|ed|ing)\b|\bup-?sampl(?:e|ed|ing)\b|\bupres\b|\benlarge\b|\bsuper[- ]?resolution\b|"
        r"\b(?:vergr[öo]ßer\w*|hochskalier\w*|agrandi[rs]?\w*|ingrandi\w*|ampl[ií]a(?:r|la|lo)?)\b|"
        # the loanword in other languages: "oppskalere", "uppskala", "opskaler", "upskalovat", "апскейл"
        r"\b(?:opp|upp|op)skal\w*|\bupskal\w*|апскейл\w*|"
        r"\bpa-?hd\b|"
        r"\b(?:aumenta\w*|augmente\w*|mejora\w*|erh[öo]h\w*|aumentare) (?:la |a |die )?"
        r"(?:r[ée]solu\w*|risoluzione|aufl[öo]sung)\b|アップスケール|高解像度|放大|超分|提高分辨率|高清化|업스케일|"
        r"\b(?:increase|double|triple|quadruple|raise) (?:the )?(?:resolution|size|pixel count)\b|"
        r"\b[248]x (?:bigger|larger|resolution|upscale|size)\b|"
        r"\bmake (?:it|this|that|them|(?:this|the|my|that|our) (?:[\w'-]+ ){0,3}?(?:image|photo|picture|pic|"
        r"shot|selfie|scan|drawing|painting|one)s?"
        r"(?: (?:i|we) (?:\w+ ){0,2}?(?:uploaded|attached|sent|shared|posted|gave you))?) "
        r"(?:a lot |much |a bit |way |\d+ ?x |\d+ times )?"
        r"(?:bigger|larger|higher[- ]res\w*|sharper|(?:sharp|clear|crisp)(?:er)? and (?:bigger|larger))\b|"
        r"\b[48] ?k (?:it|this|that)\b|"
        r"\b(?:vergroot\w*|opschal\w*|agrand(?:ar|a|e)\b|ampliar\w*|"
        r"ingrandire)\b(?!\s+(?:\w+\s+)?" + _TONE + r")|"
        r"\baument(?:a|ar|e)\w* (?:esta|este|essa|esse|la|el|a|o|mi|minha|meu) (?:foto\w*|imagen|imagem|"
        r"dibujo|desenho)\b|(?<!\w)увелич\w*\b(?!\s+(?:\w+\s+)?" + _TONE + r")|拡大|확대|"
        r"\bhigher resolution version\b"
    ),
    "detail": (
        # a defect of hands or a face said, then a fix asked ("the hands r messed up, 6 fingers lol can u
        # fix", "le visage est flou, tu peux le retoucher"), in a sentence or two
        # "I would like only the face to be repaired"
        r"\b(?:only|just) (?:the|her|his|their|my) (?:faces?|hands?|eyes) (?:to be |be |gets? )?"
        r"(?:repaired|fixed|restored|corrected|redone|retouched)\b|"
        r"\b(?:faces?|hands?|fingers|eyes|visages?|caras?|rostros?|manos|viso|volto|mani|gesicht|h[äa]nde|"
        r"rosto|m[ãa]os|mukha|kamay|mains|doigts|dedos|dita)\b[^.;!]{0,60}?"
        r"\b(?:messed|mangled|deformed|wonky|weird|broken|wrong|"
        r"blurr?y|blurred|fuzzy|out of focus|distorted|melted|cursed|extra|six|seven|[67]|flou|floue|"
        r"rat[ée]e?s?|foir[ée]e?s?|bizarres?|"
        r"off[- ]model|"
        r"borros[oa]s?|"
        r"sfocat[oa]|unscharf|verschwommen\w*|emba[çc]ad[oa]|desfocad[oa]|malabo)\b[^;!]{0,80}?"
        r"\b(?:fix|fixed|repair|correct|redo|redraw|improve|restore|sharpen|clean|sort (?:it|them|that)|"
        r"make (?:it|them|her|him|that|those|(?:the |her |his )?(?:face|eyes|hands?)) "
        r"(?:crisp|crisper|sharp|sharper|clear|clearer|look right|look normal)|detail[- ]up|"
        r"touch (?:it |them )?up|"
        r"fix (?:em|'em|dem)|"
        r"retouch\w*|retouche[rz]?|"
        r"arregl\w+|arrang\w+|corrig\w+|repar\w+|consert\w+|ripar\w+|sistem\w+|korrigier\w+|reparier\w+|ayusin|"
        r"pa-?ayos|ayos)\b|"
        r"\bopen (?:her|his|their|the) eyes\b(?! to\b)|"
        r"\b(?:unblur|deblur|de-blur)\w* (?:the |her |his |their |my |its )?"
        r"(?:[a-z'\u2019]+ )?(?:faces?|eyes|hands?|fingers)\b|"
        r"\b(?:fix|improve|enhance|refine|restore|repair|sharpen|correct|detail|redo|redraw|clean up|"
        r"detail[- ]up)"
        r"(?:e?s|ed|ing)? (?:up )?(?:just |only )?(?:the |her |his |their |all |my |its |our )?"
        r"(?:[a-z'\u2019]+ )?"
        r"(?:faces?|hands?|eyes|fingers|facial features)\b(?! of (?:a|an|the) (?:clock|watch|compass|cliff))|"
        r"\b(?:faces?|hands?|fingers|eyes)(?: (?:in|on|of) (?:the|this|my|her|his|our)(?: [\w']+){1,4}?)? "
        r"(?:looks?|are|is|came out|come out|seems?|have|has)\b[^.;]{0,40}"
        r"\b(?:fix|repair|redo|redraw|correct|improve|restore|sharpen)\b|"
        r"\b(?:corrige[rz]?|r[ée]pare[rz]?|am[ée]liore[rz]?) (?:le |les |son |ses )?(?:visage|mains)\b|"
        r"\b(?:arregla|corrige|mejora|repara|restaura) (?:la |las |su |sus )?(?:cara|rostro|manos)\b|"
        r"\b(?:sistema|correggi|migliora|ripara) (?:il |le |la )?(?:viso|volto|faccia|mani)\b|"
        r"\b(?:verbessere|repariere|korrigiere|restauriere) (?:das |die |sein |ihr )?(?:gesicht|h[äa]nde)\b|"
        r"\bgesicht\w* (?:verbessern|reparieren|korrigieren)\b|"
        r"(?:顔|手)(?:を)?(?:修正|直して|補正|きれいに)|修复.{0,4}(?:脸|面部|手)|(?:脸|面部|手部)修复|"
        r"\b(?:face|hand|facial) (?:detail(?:er|ing)?|fix|restoration|refine(?:ment)?)\b|"
        r"\badetailer\b|\bdetail pass\b|"
        # "then do a second touch-up pass on the face so it's sharp", "an extra pass on the hands"
        r"\b(?:touch[- ]?up|detail(?:ing)?|refin\w*|fix(?:ing)?|second|2nd|extra|separate|another|additional|"
        r"clean[- ]?up|sharpen\w*|restor\w*|face|hand)"
        r"(?: (?:touch[- ]?up|detail(?:ing)?|refin\w*|fix(?:ing)?|"
        r"clean[- ]?up|inpaint(?:ing)?))? (?:pass|step|round)(?:es)? (?:just |only )?(?:on|over|for|"
        r"of|around) "
        r"(?:the |her |his |their |its |all (?:the )?|each )?"
        r"(?:faces?|hands?|eyes|fingers|facial features)\b|"
        r"\btouch(?:es|ed|ing)? up (?:the |her |his |their |its )?(?:faces?|hands?|eyes|fingers)\b|"
        # the same in French, Spanish, Italian, German, Portuguese
        r"\bpasses? (?:de )?(?:retouche|d[ée]tails?|correction) (?:sur|pour) (?:le |les |son |ses )?"
        r"(?:visages?|mains)\b|"
        r"\bretouche[rsz]? (?:le |les |du |des )?(?:visages?|mains)\b|"
        r"\b(?:pasada|pase) de (?:retoque|detalle)s? (?:en|para|sobre) (?:la |las |su |sus )?"
        r"(?:caras?|rostros?|manos)\b|"
        r"\bretoca[r]? (?:la |las |su |sus )?(?:caras?|rostros?|manos)\b|"
        r"\b(?:ritocc\w+|passata di dettagli?) (?:al |del |sul |alle |delle )?(?:viso|volto|faccia|mani)\b|"
        r"\b(?:gesicht|h[äa]nde)\w* (?:nachbessern|retuschieren|nacharbeiten)\b|"
        r"\bretoc(?:ar|ue) (?:o |os |do |dos )?(?:rosto|rostos|m[ãa]os)\b|"
        # "make her eyes look sharper", "so her eyes are open"
        r"\bmake (?:the |her |his |their |its )?(?:faces?|eyes|hands|fingers) (?:look )?(?:sharper|clearer|"
        r"better|more natural|natural|less blurry|normal|open|symmetrical|realistic)\b|"
        r"\b(?:fix|repair|correct|sharpen|restore|redo|redraw|clean up|improve|refine)\b[^.;]{0,40}"
        r"\bso (?:that )?(?:her|his|their|the) (?:eyes|face|hands|fingers) (?:are|is|look)\b|"
        # pl, cs, ru, el, tr, sv, nl, pt, id/ms, vi, ar, ko
        r"\b(?:popraw|napraw|wyostrz|skoryguj|oprav|vylepši|zaostři|spravi)\w*\s+(?:\w+\s+){0,2}?"
        r"(?:twarz\w*|r[ęe]c\w*|r[ęe]k\w*|d[łl]on\w*|oczy|oczu|palc\w*|obli[čc]ej\w*|tv[áa][řr]\w*|ruce|ruk\w*|o[čc]i|prst\w*)|"
        r"(?<!\w)(?:исправ|почин|улучш|поправ|подправ)\w*\s+(?:\w+\s+){0,2}?(?:лиц|рук|глаз|пальц|кист)\w*|"
        r"(?<!\w)(?:διόρθω|φτιάξ|βελτίω)\w*\s+(?:\w+\s+){0,2}?(?:πρόσωπ|χέρ|μάτι|δάχτυλ)\w*|"
        r"\b(?:yüz(?:ü|ünü)?|eller\w*|elin\w*|göz\w*|parmak\w*)\s+(?:\w+\s+)?(?:düzelt|onar|netleştir|iyileştir)\w*|"
        r"\b(?:fixa|förbättra|laga|rätta)\s+(?:till\s+)?(?:\w+\s+)?(?:ansikt\w*|händ\w*|hand\w*|ögon\w*|fingr\w*)|"
        r"\b(?:herstel|verbeter|repareer|fix)\w*\s+(?:het |de |haar |zijn |hun )?(?:gezicht|handen|"
        r"ogen|vingers)\b|"
        r"\b(?:corrig|consert|arrum|melhor)\w*\s+(?:o |a |os |as |seu |sua |seus |suas )?(?:rosto|"
        r"cara|m[ãa]os|olhos)\b|"
        r"\b(?:perbaiki|benerin|betulkan|pertajam|perjelas|rapikan)\s+(?:\w+\s+)?(?:wajah|muka|tangan|mata|jari)\w*|"
        r"(?<!\w)(?:sửa|chỉnh|làm rõ|làm nét)(?!\w)[^.;]{0,15}?(?:khuôn mặt|gương mặt|mặt|bàn tay|"
        r"tay|mắt|ngón tay)(?!\w)|"
        r"(?<!\w)(?:أصلح|اصلح|صحح|صحّح|حسّن|حسن|عدّل|عدل)\w*\s+(?:\S+\s+)?(?:ال)?(?:وجه|يد|يدي|أيدي|ايدي|عين|عيون)\w*|"
        r"(?:얼굴|손가락|손|눈)(?:만|을|를|이|가|도)\s?[^.;]{0,12}?(?:고쳐|고치|수정|선명하게|보정|복원|다듬)"
    ),
    "reference": (
        r"\b(?:attached|attaching|here(?:'s| is)|sending|sent|uploaded)\b[^.;]{0,60}\b(?:a |the )?"
        r"(?:photo|picture|pic|shot|image)s? of (?:it|them)\b|"
        r"\b(?:photo|picture|pic|shot|image)s? of (?:it|them) (?:is |are )?(?:attached|included|uploaded)\b|"
        r"\b(?:use|using|used)\b[^.;!?]{0,20}\bas (?:a |the |my )?reference\b|"
        r"\b(?:with|using|like|from|as (?:in|shown in)) (?:the |this |a |my )?reference"
        r"(?: image| photo| picture)?\b|\breference (?:image|photo|picture)\b|"
        r"\bfrom the (?:second|other|attached) (?:image|photo|picture)\b|"
        r"\b(?:from|in|of|like|as in) (?:the |a |this )?(?:second|other|2nd|another) "
        r"(?:image|photo|picture|pic|shot)\b|"
        # "the one in the product photo": a product to put in; "the background of the product photo" is edited
        r"\b(?:from|in|like|as in) (?:the |a |this )?(?:catalog(?:ue)?|product) "
        r"(?:image|photo|picture|pic|shot)\b|"
        r"\b(?:from|in|of|like) (?:picture|image|photo|pic) [b2]\b|"
        # "our coffee bag (ref pic)", "ref img attached", and the reference picture of other languages:
        # "de referentiefoto", "das Referenzbild", "la foto de referencia", "l'image de référence"
        r"\(\s*ref(?:erence)?\.?(?: (?:pic|photo|image|img|shot))?\s*\)|\bref\.? (?:pic|img|photo|shot)s?\b|"
        r"\breferen[a-zæøåäöü]*(?:foto|bild|bilde|billede|kuva|kép|afbeelding|plaatje|fotka|snímek)\w*|"
        r"\b(?:foto|imagen|imagem|image|immagine|obraz|zdj[ęe]cie) (?:de |di |da )?"
        r"r[ée]f[ée]ren(?:cia|ce|za|ční)\b"
    ),
    # a second pass asked for: by name, "high res", "a second / upscale pass", "small first, then upscale"
    "hires": (
        r"\bhi-?res\.? ?fix\b|\bhigh[- ]res(?:olution)? fix\b|\btwo[- ]pass(?:es)?\b|"
        r"\bin two (?:passes|stages|steps)\b|"
        r"\bgenerate\b[^.;]{0,25}?\bupscal\w*\b[^.;]{0,25}?\b(?:refine|re-?denoise|add detail)|"
        r"\bupscaled? and refined?\b|"
        r"\brefined? at (?:a )?higher resolution\b|\b(?:hi|high)[- ]?res(?:olution)?\b(?! (?:version of|"
        r"copy of|scan))|"
        r"\b(?:second|2nd|extra|another|additional|refin\w*|upscal\w*|high[- ]res) "
        r"(?:(?:upscal\w*|refin\w*|denois\w*|detail\w*|high[- ]res) )?(?:pass|stage|step)\b"
        r"(?! (?:just |only )?(?:on|of|for|over|around) (?:the |her |his |their |its )?(?:faces?|"
        r"hands?|eyes|fingers)\b)"
        r"(?! of (?:the|a|an|his|her|their)\b)|"
        r"\b(?:small|smaller|low[- ]res\w*|lower resolution|native size)\b(?: first)?[^.;]{0,30}?"
        r"\b(?:then|and then|before|after that|afterwards)\b[^.;]{0,30}?"
        r"\b(?:upscal\w*|enlarg\w*|scale it up)|"
        r"\bupscale (?:it )?(?:in|with) a second pass\b"
    ),
}


INTENT_COMPILED = {label: re.compile(rx, re.IGNORECASE) for label, rx in _INTENT_RULES.items()}
INTENT_COMPILED["outpaint"] = re.compile(r"(?!)")  # set in classify: only with a picture to extend
