"""Prompt labels without an LLM: keyword rules, plus a local embedding model when one is given.

Labels come in four groups, the vocabulary the template library and the score table use:

- ``subjects``: people, animals, wildlife, nature, landscapes, urban, objects, food
- ``styles``: photo-realistic, painting, illustration, anime, detailed, edit
- ``formats``: wide, tall, large (the image's shape and size, not its content)
- ``task``: text-to-image, image-to-image or inpaint (exactly one)
- ``intents``: a composition the prompt asks for (style of a reference image, a palette,
  regions, pose/depth/edge control, upscale, face/hand detail, inpaint with a reference)

>>> labels = classify("a wide panorama of a mountain lake at dawn, photorealistic")
>>> labels.subjects, labels.styles, labels.formats, labels.task
(['landscapes'], ['photo-realistic'], ['wide'], 'text-to-image')
>>> classify("portrait of an old fisherman, oil painting").all()
['painting', 'people', 'text-to-image']
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from agents import lexicon
from agents.orientation import explicit_ratio, find_shape, normalize, strip_shapes
from agents.outpaint import asks_outpaint
from agents.regions import english_sides, foreign_regions, split_regions
from agents.typos import fix_typos

SUBJECTS = ("people", "animals", "wildlife", "nature", "landscapes", "urban", "objects", "food")
STYLES = ("photo-realistic", "painting", "illustration", "anime", "detailed", "edit")
FORMATS = ("wide", "tall", "large")
TASKS = ("text-to-image", "image-to-image", "inpaint")
# what a composition template does, asked for in words (each names the templates' ``intents``)
INTENTS = ("style", "palette", "regions", "mask-region", "pose", "control", "depth", "edges",
           "upscale", "detail", "reference", "hires", "outpaint")
VOCABULARY = SUBJECTS + STYLES + FORMATS + TASKS + INTENTS
# the input role each intent implies (a prompt asking for it needs that input)
INTENT_INPUTS: dict[str, tuple[str, ...]] = {
    "style": ("image", "style"), "palette": ("image", "palette"), "mask-region": ("mask",),
    "pose": ("control",), "control": ("control",), "depth": ("image",), "edges": ("image",),
    "upscale": ("image",), "reference": ("image", "mask", "reference"), "outpaint": ("image",),
}
# an intent some given input implies when the words do not name one
ROLE_INTENTS = {"style": "style", "palette": "palette", "reference": "reference", "control": "control"}


def _words(*words: str) -> str:
    """A regex matching any of ``words`` as whole words, plurals included."""
    return r"\b(?:" + "|".join(words) + r")(?:e?s)?\b"


# what a user calls a picture they give ("this portrait", "my selfie", "the render I attached");
# only after a determiner that points at it, so "a portrait of a woman" stays a text prompt
_PICTURE = (r"(?:photos?|images?|pictures?|pics?|drawings?|sketch(?:es)?|selfies?|renders?|renderings?|"
            r"scans?|screenshots?|fotos?|snapshots?|photographs?|portraits?|paintings?|illustrations?|"
            r"artworks?|art ?work|shots?|headshots?|photo ?shoots?|line ?art|frames?|stills?|"
            r"captures?|snaps?|photo|jpe?g|png|drafts?|mock-?ups?|pfps?|screencaps?|screengrabs?|fan ?arts?|"
            r"doodles?|slides?|photies?)(?! life)")
# the white area of a mask, in several languages
_WHITE_AREA = (r"(?:\bwhite (?:area|region|part|zone|spot|shape|space)s?\b|\b(?:area|bagian|daerah|"
               r"bidang) putih\b|"
               r"\b(?:vùng|phần|khu vực) (?:màu )?trắng\b|(?:ال)?(?:منطقة|مساحة|جزء) (?:ال)?(?:بيضاء|"
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
        r"\b(?<!design )(?<!create )(?<!generate )(?<!invent )"  # "design my logo": a new one
        # "for our website hero image": the picture's purpose, not a given one
        r"(?:(?:this|these|(?<!for )my|(?<!for )our|the (?:input|given|attached|uploaded|provided)|attached) "
        r"(?:[a-z&/'-]+ ){0,2}" + _PICTURE + r"\b|input image|img2img(?! (?:look|style|vibe|feel|aesthetic))|"
        r"\bthe (?:[a-z]+ ){0,2}" + _PICTURE + r" "
        r"(?:that |which )?(?:i|we)(?:'ve| have| had)?(?: just| already)? "
        r"(?:attached|uploaded|sent|shared|gave|took|shot|posted|added|dropped|pasted|included|provided)\b|"
        r"\bthe one (?:that )?(?:i|we)(?:'ve| have| had)?(?: just| already)? "
        r"(?:attached|uploaded|sent|shared|"
        r"dropped|pasted|posted|added|included|provided)\b|\bsee (?:the )?attached\b|"
        r"\b(?:as|for) (?:the |an? |my )?(?:init(?:ial)?|source|base|starting|input) "
        r"(?:image|picture|photo|img)\b|"
        # "Attached is a black and white photograph of my crew", "fix the hands on this pls"
        r"\battached (?:is|are|here is) (?:a |an |the |my |our )?(?:[\w&/'-]+ ){0,4}?" + _PICTURE + r"\b|"
        r"\b(?:on|in|of|to) this (?=(?:pls|plz|please|one)\b)|\b(?:on|in) this\s*[?!.]*\s*$|"
        # "need the product image upscaled", "the label image retouched": a picture done something to
        r"\b(?:the|my|this|our) (?:[a-z]+ ){0,2}" + _PICTURE + r" (?:upscaled|enlarged|retouched|restored|"
        r"sharpened|cleaned up|colou?ri[sz]ed|fixed|edited|touched up)\b|"
        # "same shot of the Lánchíd I sent", "that pic i just dropped": what the user sent is given
        r"\b(?:that|this|the) "
        r"(?:(?!(?:masks?|maps?|depth|pose|skeleton|palette|swatch|scribble|canny|edges?)\b)"
        r"[\w&/'-]+ ){1,6}?(?:i|we)(?:'ve| have)?(?: just| already)? (?:sent|attached|"
        r"uploaded|dropped|shared|posted)(?! (?:a |an |the |my )?(?:mask|map|depth|pose|skeleton|palette|"
        r"swatch|scribble|line ?art|canny|edge)s?\b)|"
        r"\bhere(?:'s| is|s| are) (?:a |an |my |the |our )?(?:[a-z0-9/&-]+ ){0,3}" + _PICTURE + r"\b|"
        # a flaw of an existing picture said ("the photo blur a bit", "the foto is small small", "my scan is
        # too dark"); "i got an old b&w pic of my avô"
        r"\b(?:the|this|that|my|our) " + _PICTURE + r" (?:is |was |looks |came out |got |are |r )?"
        r"(?:(?:a bit |too |so |very |really |kinda |quite |all |super |pure )?"
        r"(?:blurr?y?|blurred|small|tiny|grainy|pixelated|"
        r"pixelly|faded|damaged|torn|scratched|low[- ]?res|washed out|overexposed|underexposed|noisy|"
        r"out of focus|crooked|cut off|cropped)|(?:too|so|very|really|kinda|quite|a bit) dark)\b|"
        r"\b(?:i |we )?(?:got|have|found) (?:a|an|this|my|our) (?:[a-z&/'-]+ ){0,3}?" + _PICTURE
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
        r"(?:[\w'-]+ ){0,2}?" + _PICTURE + r"\b|"
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
        r"\bthe " + _PICTURE + r" (?:below|above|here)\b|"
        r"\b(?:i'?m|i am|we'?re|i'?ll|i will|i've|i have) (?:just )?(?:sending|attaching|uploading|giving|"
        r"sharing|send|attach|upload|give|share|sent|attached|uploaded|given|shared)(?: you)? "
        r"(?:a |an |my |the |our )?(?:[a-z]+ ){0,2}" + _PICTURE + r"\b|"
        r"\bthe (?:[a-z]+ ){0,2}" + _PICTURE + r" (?:i'?m|i am|we'?re|i'?ll) "
        r"(?:sending|attaching|uploading|giving|sharing)\b|"
        r"[\[<](?:image|photo|picture|attached image|img)[\]>]|"
        # an edit told to "the photo" at the start: "change the background of the photo to a beach"
        r"(?:(?:^\s*|\b(?:please|pls|plz|can (?:you|u)|could (?:you|u))\s+)"
        r"(?:make|change|edit|turn|convert|transform|give|adjust|apply)|"
        # an edit of what is there, after any clause ("..., colour the b/w photo")
        r"(?:^\s*|[.;:!?,\u2013\u2014-]\s*|\b(?:please|pls|plz|can (?:you|u)|could (?:you|u))\s+)"
        r"(?:brighten|darken|enhance|retouch|fix|restyle|sharpen|crop|recolou?r|colou?r|colou?ri[sz]e|"
        r"restore|repair|clean|upscale|extend|expand|widen|remove|erase|replace|blur|unblur|denoise))\b[^.;]{0,40}?"
        r"\b(?:the|my) (?:image|photo|picture|pic|shot|photograph|render|drawing|sketch|selfie|scan)\b"
        # "make the image 4000 px wide": the output, not a given picture
        r"(?!\s+\d{3,6}\s*(?:px|pixels?|x\b|by\b|wide|tall|high))"
    ),
}
_COMPILED = {label: re.compile(rx, re.IGNORECASE) for label, rx in _RULES.items()}
# the input phrases taken out before styles and subjects are matched: only the generic picture
# nouns ("this photo"), so "this van gogh painting" or "my portrait" still say a style or subject
_INPUT_PHRASE = re.compile(
    r"\b(?:this|these|my|our|the (?:input|given|attached|uploaded|provided)|attached) (?:[a-z]+ ){0,2}"
    r"(?:photos?|images?|pictures?|pics?|scans?|screenshots?|fotos?|snapshots?|photographs?)\b|"
    r"input image|img2img|\(?(?:image|photo|mask) attached\)?|"
    r"restyle|re-?draw|(?:turn|make) (?:this|my)(?: (?:photo|image|picture|drawing|sketch))?\b|"
    r"based on the (?:image|photo)", re.IGNORECASE)

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
        r"\b(?:faces?|hands?|fingers|eyes|visages?|caras?|rostros?|manos|viso|volto|mani|gesicht|h[äa]nde|"
        r"rosto|m[ãa]os|mukha|kamay)\b[^.;!]{0,60}?\b(?:messed|mangled|deformed|wonky|weird|broken|wrong|"
        r"blurr?y|blurred|fuzzy|out of focus|distorted|melted|cursed|extra|six|seven|[67]|flou|floue|"
        r"off[- ]model|"
        r"borros[oa]s?|"
        r"sfocat[oa]|unscharf|verschwommen\w*|emba[çc]ad[oa]|desfocad[oa]|malabo)\b[^;!]{0,80}?"
        r"\b(?:fix|fixed|repair|correct|redo|redraw|improve|restore|sharpen|clean|sort (?:it|them|that)|"
        r"make (?:it|them|her|him|that|those|(?:the |her |his )?(?:face|eyes|hands?)) "
        r"(?:crisp|crisper|sharp|sharper|clear|clearer|look right|look normal)|detail[- ]up|"
        r"touch (?:it |them )?up|"
        r"fix (?:em|'em|dem)|"
        r"retouch\w*|retouche[rz]?|"
        r"arregl\w+|corrig\w+|repar\w+|consert\w+|ripar\w+|sistem\w+|korrigier\w+|reparier\w+|ayusin|"
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
        r"\b(?:from|in|of|like) (?:picture|image|photo|pic) [b2]\b"
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
_INTENT_COMPILED = {label: re.compile(rx, re.IGNORECASE) for label, rx in _INTENT_RULES.items()}
_INTENT_COMPILED["outpaint"] = re.compile(r"(?!)")  # set in classify: only with a picture to extend
# a given map ("following this edge map") is a control input, not an image to derive one from
_MAP = (r"(?:canny|edges?|depth|pose|openpose|normal|segmentation|seg|semantic|scribble|line ?art|mlsd|hed|"
        r"soft ?edge|outline)(?:[- ](?:edge|edges|detection))?[- ]"
        r"(?:map|image|pass|render|mask|drawing|skeleton|stick ?figure|file|png|control(?: image)?)s?")
_GIVEN_MAP = re.compile(
    r"(?:\b(?:this|these|my|our|attached|given|uploaded|provided|ready|existing|here(?:'s| is| are)|"
    r"(?:i|we)(?:'ve| have)?(?:\s+(?:already|just|also|got|made|drew|drawn|prepared|exported|rendered|"
    r"generated|created|baked|extracted|traced|computed|saved|have))+|i(?:'ve| have)|we have|"
    r"using|use|from|following|follow|with|based on|"
    r"according to)\s+(?:(?:a|an|the|my|this|our)\s+)?(?:[a-z]+\s+)?" + _MAP +
    r"|\b(?:a|an|the)\s+(?:[a-z]+\s+)?" + _MAP + r"\s*\(?\s*(?:(?:that\s+)?(?:i|we)(?:'ve)?\s+(?:just\s+)?"
    r"(?:attached|uploaded|made|drew|have|gave|provided|sent|prepared)|(?:is\s+)?attached|i'm giving))\b"
    # "the depth map of this photo" is read from the photo; "a depth map of my living room (exported
    # from Blender)" is the user's map of a scene
    r"(?!\s+(?:of|from|for)\s+(?:(?:this|that|these|your|the (?:attached|given|uploaded))\b|"
    r"(?:my|our)\s+(?:[a-z]+\s+){0,2}?(?:photos?|images?|pictures?|renders?|shots?|selfies?|portraits?|pics?|"
    r"snaps?)\b|"
    r"the\s+(?:[a-z]+\s+){0,2}?(?:photos?|images?|pictures?|renders?|shots?|selfies?|portraits?)\b))|"
    r"\b(?:the attached|this|my|the uploaded|the given)(?: (?:image|picture|file|photo|one))? is "
    r"(?:a|an|my|the)\s+(?:[a-z]+\s+)?" + _MAP + r"|"
    r"\b(?:this|my|our|the attached|attached|i drew(?: a| an)?|i made(?: a| an)?|i have(?: a| an)?|"
    r"(?:i|we)(?:'ve| have)?(?:\s+(?:already|just|also|made|drew|drawn|prepared|done|did|have|got))+"
    r"(?:\s+(?:a|an|my|the))?|"
    r"here(?:'s| is)(?: a| an| my)?)\s+(?:rough\s+|quick\s+|little\s+)?scribbles?\b|"
    # "attached canny edges of my storefront", "canny edge map of our track plan is attached", "attached is a
    # canny edge map i already made"
    r"\battached (?:is|are) (?:a|an|the|my|our)\s+(?:[a-z]+\s+)?" + _MAP + r"|"
    r"\battached:?\s+(?:the\s+|my\s+|our\s+|a\s+)?(?:canny|depth|openpose|normal|scribble|line ?art|mlsd|"
    r"soft ?edge)\b|"
    r"(?:^|[.;!?]\s*)\W*(?:the\s+|my\s+|our\s+)?" + _MAP + r"\b[^.;!?]{0,60}?\b(?:is|are) attached\b",
    re.IGNORECASE)
# a map the user has, however it is said: "I already have a depth map", "the attached depth map of our
# bottle" (a map that is attached is the input, whatever it shows), "lineart I drew", "my pose skeleton",
# and in other languages ("j'ai déjà une image de contours", "tengo un mapa de profundidad")
_MAP_FOREIGN = (r"(?:carte|image|map) (?:de |des )?(?:profondeur|contours?|bords|pose|normales)|"
                r"mapa (?:de )?(?:profundidad|profundidade|bordes|bordas|contornos?|pose|normales)|"
                r"(?:tiefen|kanten|posen|normal|linien)(?:karte|bild|map)|"
                r"mappa (?:di |dei |della )?(?:profondit[àa]|bordi|contorni|posa|normali)|"
                r"dieptekaart|randenkaart|深度图|深度圖|边缘图|線画|深度マップ|ポーズ画像|骨架图|깊이\s?맵|뎁스\s?맵|"
                r"mapa canny|canny[- ]?(?:karta|kartan|kort|mapu|mapa)|depth[- ]?map[au]|djupkart\w*|"
                r"dybdekort\w*|syvyyskart\w*|karta głębi|mapu dubine|mapa dubine")
_OWN_MAP = re.compile(
    r"\bsent (?:me |us )?(?:a|an|the|their|his|her|this) (?:[\w-]+ )?" + _MAP + r"|"
    r"\b(?:posed|made|built|set up|created|rigged) (?:a|the|my) (?:pose |openpose )?skeleton\b|"
    r"\b(?:i|we)(?:'m| am|'re| are)? "
    r"(?:attach|attaching|attached|send|sending|sent|upload|uploading|uploaded)"
    r" (?:you )?(?:the |my |a |an |some |our )?(?:canny|depth|openpose|pose|edge|line ?art|lineart|scribble|"
    r"normal)\w*(?: (?:edges?|maps?|skeleton|lines?))?\b|"
    r"\b(?:(?:openpose|pose) )?(?:skeleton|stick figure|openpose)s?\s*(?:\(\s*)?(?:is\s+)?"
    r"(?:attached|enclosed|uploaded|included)\b|"
    r"(?:^|[.;,!?(\u2013\u2014-]\s*)(?:[a-z]+\s+)?" + _MAP + r"\s*(?:\(\s*)?(?:is\s+)?"
    r"(?:attached|enclosed|uploaded|included)\b|\b(?:exported|saved|rendered|converted|baked)\s+(?:it\s+)?as\s+(?:a|an|the|my)\s+"
    r"(?:[a-z]+\s+)?" + _MAP + r"(?:\s*\((?:see )?attached\))?|"
    r"(?:^|[.;,!?]\s*)(?:got|have|attached|here'?s|sending|attaching)\s+(?:(?:a|an|my|the|our)\s+)?"
    r"(?:[a-z]+\s+)?" + _MAP + r"|"
    r"\b(?:i|we)\s+(?:already|also)\s+(?:have|got|made|drew)\s+(?:(?:a|an|the|my|our)\s+)?(?:[a-z]+\s+)?"
    + _MAP +
    # "i have a depth map of my living room render", "got this black/white outline image": the user has the
    # map, whatever it was made from
    r"|\b(?:(?:i|we)(?:'ve| have)? got|(?:i|we) have|(?:i|we)'ve)\s+(?:(?:a|an|the|this|my|our)\s+)?"
    r"(?:[a-z/-]+\s+){0,2}?" + _MAP +
    r"|\bgot (?:this|a|an|the|my)\s+(?:[a-z/-]+\s+){0,2}?" + _MAP +
    r"|\b(?:the\s+)?(?:attached|uploaded|provided|existing|ready[- ]made)\s+(?:[a-z]+\s+)?" + _MAP +
    r"|\b(?:my|our)\s+(?:own\s+)?(?:[a-z]+\s+)?" + _MAP +
    r"|\b(?:my|our|this|the)?\s*(?:line ?art|lineart|scribble|outline|pose skeleton|stick figure|skeleton)"
    r"s?\s+"
    r"(?:that\s+)?(?:i|we)(?:'ve)?\s+(?:just\s+)?(?:drew|made|drawn|traced|did|sketched|uploaded|attached|sent|"
    r"posed)\b"
    # "attached is my lineart (just the outlines)", "turn our line art into a photo"
    r"|\b(?:my|our|this|the attached|attached)\s+(?:own\s+)?(?:[a-z]+\s+)?(?:line ?art|lineart|openpose|"
    r"pose skeleton|stick figure)s?\b"
    r"|(?:j'ai(?: d[ée]j[àa])?|voici|ma|mon|tengo|aqu[ií] (?:est[áa]|tienes)|mi|ich habe(?: schon| bereits)?|"
    r"imam|mam|jag har|jeg har|använd|bruk|käytä|koristi|usa|"
    r"hier ist|meine?n?|ho(?: gi[àa])?|la mia|il mio|tenho|eu tenho|minha|meu|ik heb|mijn|我有|我的|附上的|"
    r"私の|既に|내|제)\s*(?:d[ée]j[àa]\s+)?(?:une |un |una |eine |einen |uma |een )?(?:[\w-]+[- ])?(?:"
    + _MAP_FOREIGN
    + r")",
    re.IGNORECASE)
# a map the user names as a file ("depth.png", "pose_ref_canny.jpg")
_MAP_FILE = re.compile(r"(?<![/\\.\w-])[\w-]*(?:depth|canny|edges?|pose|lineart|scribble|normals?|seg)"
                       r"[\w-]*\.(?:png|jpe?g|webp|bmp|tiff?|exr)\b", re.IGNORECASE)
# a picture the user gives, in other languages ("esta foto", "dieses Bild", "この写真", "这张照片")
_GIVEN_FOREIGN = re.compile(
    r"\b(?:esta|esa|mi|mis|nuestra)\s+(?:foto(?:graf[ií]a)?|imagen|ilustraci[oó]n|dibujo|pintura|retrato|selfie)\b|"
    r"\b(?:esta|essa|minha|nossa|este|esse|meu)\s+(?:foto(?:grafia)?|imagem|ilustra[cç][aã]o|desenho|pintura|"
    r"retrato)\b|"
    r"\b(?:questa|quest'|la mia|una mia|questo|il mio)\s?(?:foto(?:grafia)?|immagine|illustrazione|disegno|"
    r"dipinto|ritratto)\b|"
    r"\b(?:cette|ma|mon|notre|cet)\s+(?:photo(?:graphie)?|image|illustration|dessin|peinture|selfie)\b|"
    r"\b(?:dieses|diese|diesem|dieser|mein|meine|meinem|meinen|meines|unser\w*)\s+(?:foto|bild(?:es)?|"
    r"zeichnung|gem[äa]lde|aufnahme|skizze|selfie)\b|"
    r"\b(?:deze|dit|mijn|onze)\s+(?:foto|afbeelding|tekening|schilderij)\b|"
    # a request about the picture by its article: "kannst du das Foto ... heller machen", "tu peux éclaircir
    # la photo", "¿puedes aclarar la foto?"
    r"\b(?:kannst|k[öo]nntest|kannste|k[öo]nnt|k[öo]nnen) (?:du|ihr|sie) (?:mir )?(?:bitte |mal )?"
    r"(?:das|dem) (?:foto|bild)\b(?![^.?!]{0,80}\b(?:malen|zeichnen|erstellen|generieren|erzeugen|entwerfen|"
    r"gestalten|kreieren)\b)|"
    r"\b(?:tu peux|peux-tu|pourrais-tu|vous pouvez|pouvez-vous|tu pourrais) "
    r"(?:(?!dessiner|cr[ée]er|g[ée]n[ée]rer|faire|peindre)\w+ ){0,3}?la photo\b|"
    r"\b(?:puedes|podr[ií]as|me puedes|pod[ée]s) "
    r"(?:(?!dibujar|crear|generar|hacer|pintar)\w+ ){0,3}?la foto\b|"
    r"\b(?:это|эту|эта|мою|моё|мое|мой|моя|этот|этой)\s+(?:фото\w*|изображени\w*|картин\w*|рисун\w*|снимок)|"
    r"(?:この|その|私の|僕の|添付の|添付した|アップロードした)(?:写真|画像|イラスト|絵|スケッチ)|"
    r"(?:这张|這張|这幅|這幅|我的|附上的|上传的|上傳的|附件的?)(?:照片|图片|圖片|图像|圖像|图|圖|画|畫|插画|草图)|"
    r"(?<!\w)(?:이|내|제|첨부한|첨부된|업로드한|보낸|보내준)\s?(?:사진|이미지|그림)|(?:사진|이미지)\s?(?:에서|속)|"
    # pl "na tym zdjęciu", "przerób to zdjęcie"; cs "na této fotce", "tuto fotku"
    r"\b(?:to|tego|tym|t[ąę]|tej|moje|mojego|moim|moj[ąe]j?|nasze|naszym|naszej|na|ze)\s+"
    r"(?:zdjęci\w*|fotografi\w*|fot[kc]\w*|obrazk\w*|rysun\w*)|"
    r"\b(?:tuto|této|tato|tomto|moji|mou|na|z)\s+(?:fot[kc]\w*|fotografi\w*|obrázk\w*|obrázek)|"
    # ru: on the photo, on the second photo, from this shot
    r"(?<!\w)(?:отправляю|прилагаю|прикладываю|посылаю|скидываю|прикрепляю|прикрепил\w*|загрузил\w*|"
    r"отправил\w*|вот)\s+(?:\w+\s+)?(?:фото\w*|снимок|изображени\w*|картин\w*|рисун\w*|репродукци\w*)|"
    r"(?<!\w)(?:на|с|со|из|по|в)\s+(?:(?:первом|втором|этом|моём|моем|моей|этой|первой|второй)\s+)?"  # noqa: RUF001
    r"(?:фото\w*|снимк\w*|изображени\w*|картинк\w*)|"
    # el "στη φωτογραφία", "τη φωτογραφία μου"
    r"(?<!\w)(?:στη|στην|αυτή\s+τη|αυτήν\s+την|τη|την)\s+(?:δεύτερη\s+)?(?:φωτογραφ\w*|εικόνα\w*)|"
    r"φωτογραφ\w*\s+μου|"
    # tr: this photo, in the photo, my photo (its case endings)
    r"\bfotoğraf(?:ımı|ımdaki|ımda|taki|ta|tan)(?!\w)|"  # noqa: RUF001
    r"\bbu\s+(?:fotoğraf\w*|resm\w*|resim\w*|görsel\w*)|"
    # sv "bilden", "fotot", "min bild"
    r"\b(?:bilden|fotot|fotografiet|teckningen|målningen)\b|\b(?:min|mitt|den här|det här)\s+(?:bild|foto)\b|"
    # vi "ảnh này", "trong ảnh", "bức ảnh của tôi"
    r"(?<!\w)ảnh\s+(?:này|của tôi|đính kèm|thứ hai)|(?<!\w)(?:trong|của|trên|vào)\s+(?:bức\s+)?ảnh|"
    # Hindi in Latin script: "photo ko", "meri photo", "tasveer mein"
    r"\b(?:photo|foto|tasveer|tasvir|pic)\s+(?:ko|mein|se|ki|ka)\b|"
    r"\b(?:meri|mera|yeh|ye|iss)\s+(?:photo|foto|tasveer|tasvir|pic)\b|"
    # pt "a foto em anexo", "na foto"; es "la foto"; nl "de foto", "op de foto"
    r"\bem anexo\b|\b(?:na|da|à)\s+foto(?:grafia)?\b|"
    # "in the attachment": pl, cs, ru, sv, nl, vi, el, tr
    r"\bw załącz\w*|\bv příloze\b|(?<!\w)(?:в|во) (?:приложени|вложени)\w*|\bi bilagan\b|\bbifogad\w*|"
    r"\bin de bijlage\b|\bbijgevoegd\w*|đính kèm|συνημμέν\w*|\bekte(?:ki)?\b|"
    r"\b(?:anexad[oa]|adjunt[oa]|allegat[oa]|in allegato|ci-joint|beigef[üu]gt\w*|angeh[äa]ngt\w*)\b|"
    r"(?:^|[.,;:!?]\s*)fotoğrafı\s|"  # noqa: RUF001
    r"\ba\s+foto(?:grafia)?\s+(?:no|na|em|do|da|num|numa|para|com|que|ao|à|e)\b|"
    r"\b(?:en la|de la)\s+foto(?:graf[ií]a)?\b|"
    r"\bla\s+foto(?:graf[ií]a)?\s+(?:en|con|a|al|que|y|e|in|nel|nella)\b|"
    r"\b(?:op de|in de|van de|de)\s+afbeelding\b|\b(?:op de|in de|van de)\s+foto\b|"
    r"(?:^|[.,;!?]\s*|\b(?:maak|zet|verander|vervang|bewerk|pas)\s+)de\s+foto\b|"
    # id/ms "foto ini", "gambar yang aku kirim", "fotoku", "terlampir"
    r"\b(?:foto|gambar|potret|lukisan|swafoto|selfie)(?:nya|ku)?\s+(?:\w+\s+)?ini\b|\b(?:foto|gambar)ku\b|"
    r"\b(?:foto|gambar)\w*\s+(?:yang|yg)\s+(?:aku|saya|ku|gue|gw)\s+(?:kirim|lampirkan|upload|unggah)\w*|"
    r"\bterlampir\b|\blampiran\b|"
    # ar "this picture", "the attached picture", "my picture"
    r"(?:هذه|هذي|تلك)\s+(?:ال)?(?:صورة|لقطة|الصوره|اللوحة)|(?:ال)?صور\w*\s+(?:ال)?مرفق\w*|صورتي|"
    r"(?:ال)?صورة\s+(?:التي|اللي)\s+(?:أرسلت|ارسلت|أرفقت|ارفقت)\w*", re.IGNORECASE)
# a mask the user gives, in other languages
_MASK_FOREIGN = re.compile(r"m[áa]scara|maschera|\bmaske\w*|\bmas(?:ce|ka|ku|kou|ky)\b|"
                           r"\bmasque\b|\bmasker\b|\b(?:za|ze|o)?mask\w*|gemaskeerd\w*|"
                           r"маск\w*|μάσκ\w*|m[ặa]t n[ạa]|マスク|蒙版|遮罩|마스크|(?:ال)?قناع\w*|"
                           r"(?<!\w)بالقناع", re.IGNORECASE)
# the words of an input that is not a picture (a mask, a pose skeleton, a map): a verb of giving
# beside one gives that input ("pakai mask yang aku kirim", "Přikládám pózu (OpenPose kostru)")
_OTHER_INPUT = re.compile(_MASK_FOREIGN.pattern + r"|\bmask\w*|\bmarked\b|openpose|\bpose\w*|\bp[óo]z\w*|"
                          r"\bkostr\w*|\bskelet\w*|\bszkielet\w*|\bmaps?\b|\bmapa\b|karte\b|\bcanny\b|"
                          r"\bdepth\b|\bedges?\b|\bline ?art\b|\bscribble\w*|поз[уае]\b|скелет\w*|карт[уа]\b|"  # noqa: RUF001
                          r"ポーズ|骨架|姿势|深度|线稿|포즈|스켈레톤|σκελετ\w*|πόζα", re.IGNORECASE)
# a masked part of a picture to redo, not a place for a new subject ("fill the masked region with sky")
_REPAINT = re.compile(r"\b(?:fill|refill|repaint|replace|swap|remove|erase|change|fix|retouch|inpaint|"
                      r"get rid|take out|clean up)\w*\b",
                      re.IGNORECASE)
# "2 nightstands ... side by side", "two chairs side by side": the subjects stand so, in one picture
_COUNTED_SIDE_BY_SIDE = re.compile(
    r"\b(?:\d+|two|three|four|both|a pair of|pair of|twin)\s+(?:[\w'-]+\s+){0,4}?[\w'-]+s?\b[^.;:]{0,40}?"
    r"\bside[- ]by[- ]side\b(?!\s*(?::|comparison|view))", re.IGNORECASE)
_NAMED_SIDE = re.compile(r"\b(?:left|right|top|bottom)\b", re.IGNORECASE)
_SPLIT = re.compile(r"\bside[- ]by[- ]side\b|\bregional prompt|\barea composition\b|"
                    r"\bsplit (?:image|screen|scene|frame|composition|picture)\b|\bdiptych\b|\btwo halves\b|"
                    r"\bcomposed of two regions\b", re.IGNORECASE)
# intents that read a given picture: without one only these explicit phrasings ask for them
_NEEDS_GIVEN = {
    "palette": re.compile(
        r"\bpalette (?:image|photo|picture|file|reference|swatch)\b|"
        r"\b(?:palette|colou?rs?) (?:of|from) (?:this|that|my|our|"
        r"the (?:attached|given|uploaded|provided|second|other|reference|palette))\b|"
        r"\b(?:this|my|the attached|the given|the uploaded) palette\b|"
        r"\b(?:swatch|colou?r chart|colou?r card) (?:image|photo|picture|file|pic)\b|"
        r"\b(?:attached|given|uploaded|provided|our|my|this) "
        r"(?:colou?r )?(?:swatch|colou?r chart|colou?r card)\b|"
        r"\bcolou?ri[sz]e (?:this|my|it|the (?:attached|given|uploaded|old))\b|\brecolou?r (?:this|my|it)\b",
        re.IGNORECASE),
    "depth": re.compile(r"\bdepth[- ](?:map|control|guided|estimation|controlnet)\b|\b3d layout\b|"
                        r"\bsame depth\b|\bestimate (?:the )?depth\b", re.IGNORECASE),
    "edges": re.compile(r"\bcanny\b|\bedge (?:map|detection|control)\b|\bcontrol ?net\b|\bsketch to\b|"
                        r"\b(?:edges|outlines?|contours?|line ?art|lineart) (?:of|from) (?:this|my|the "
                        r"(?:attached|given|uploaded|photo|image|picture|sketch|drawing))\b",
                        re.IGNORECASE),
}
# an upscale of a given picture said plainly: "print size", "without getting blurry", "bigger"
# outpainting words that need no given-picture words beside them
_STRONG_OUTPAINT = re.compile(r"\bout-?paint\w*|\bun-?crop\w*|\bexpand (?:the )?canvas\b|"
                              r"\berweiter\w*|\bdorysuj\w*|\brozszerz\w*|\buitbreid\w*|"
                              r"\bbreid\w* (?:\w+ )?uit\b|\bagrandi[rs] (?:le|la) (?:cadre|toile)\b|"
                              r"\bampl[ií]a(?:r)? (?:el|o|a) (?:lienzo|tela)\b|"
                              r"扩图|外扩|扩展画面|拡張して|アウトペイント|"
                              # the picture itself is extended: "continue the picture to the right"
                              r"\b(?:extend|expand|widen|continue)\w* (?:the|this|my|our) "
                              r"(?:[a-z']+ ){0,3}?"
                              r"(?:photo|image|picture|pic|shot|canvas|frame|background|scene|portrait|painting)\b"
                              r"(?! of (?:a|an)\b)", re.IGNORECASE)
# a pose taken from a picture for a new subject, not the pose of the picture being redrawn
_POSE_FROM = re.compile(r"\bpose (?:as|of|from|in|shown in|like)\b|\bas (?:the|a|my) pose\b|"
                        r"\bpose (?:reference|ref|map|skeleton)\b|\bposed like\b", re.IGNORECASE)
_UPSCALE_GIVEN = re.compile(
    r"\b(?:print|poster|billboard|wall)[- ]size\b|\bbig enough (?:to|for) (?:print|a poster|hang)\w*|"
    r"\bwithout (?:it )?(?:getting|going|becoming|turning|looking|being) (?:all )?"
    r"(?:blurry|blurred|pixelated|pixelly|grainy|fuzzy|soft)\b|\b(?:bigger|larger) (?:version|size|copy)\b|"
    r"\bhigher[- ]res(?:olution|\w{5,8})?\b|\bblow (?:it |this |them )?up\b|"
    # "make am big and sharp", "aumentar a resolução dessa imagem", "iongeze size mara mbili"
    r"\b(?:bigger|larger) for (?:print|printing|a print|a poster|a billboard|the wall)\b|"
    r"\b(?:sharp|sharper|crisp|crisper|clear|clearer)\s+(?:n|and|&|\+)\s+"
    r"(?:big|bigger|larger|hd|high[- ]?res)\b|"
    r"\b(?:bigger|larger|hd)\s+(?:n|and|&|\+)\s+(?:sharp|sharper|crisp|crisper|clear|clearer)\b|"
    r"\b(?:bigger|larger)\b[^.;!?]{0,20}\b(?:[2-8] ?x|x ?[2-8])\b|\b(?:super |very |really )?high[- ]res\b"
    r"[^.;!?]{0,20}\bfor (?:a |the )?(?:billboard|print|poster|banner)\b|"
    r"\b(?:o|el|al|com o|con el) (?:dobro|doble) (?:do|del|de) (?:tamanho|tamaño)\b|\bhd-?(?:in|kan|kn)\b|"
    r"\b(?:resolution|res)\b[^.;!?]{0,30}\b(?:is |r |are )?(?:tiny|low|small|bad|poor|crap)\b|"
    r"\bmake (?:am|it|this|dis|dat|them|the (?:pic|photo|image|picture|foto))\s+"
    r"(?:big|bigger|larger|more big|"
    r"hd|full ?hd|uhd|4k|8k|high[- ]?res(?:olution)?)\b|"
    r"\blow[- ]?res(?:olution)?\b[^.;!?]{0,40}\b(?:make|need|want|print)\b|"
    r"\baument\w*\s+(?:a\s+|la\s+|sua\s+|su\s+)?(?:resolu[cç][aã]o|resoluci[oó]n|risoluzione)\b|"
    r"\baugmente[rz]?\s+(?:la\s+)?r[ée]solution\b|\b(?:erh[öo]h|vergr[öo](?:ß|ss)er)\w*\s+(?:die\s+)?aufl[öo]sung\b|"
    r"\baufl[öo]sung\w*\s+(?:erh[öo]hen|vergr[öo](?:ß|ss)ern)\b|\bzwi[ęe]ksz\w*\s+rozdzielczo\w*|"
    r"\b(?:tingkatkan|naikkan|gedein)\s+resolusi\w*|\bn[âa]ng\s+(?:cao\s+)?(?:đ|d)[ộo]\s+ph[âa]n\s+gi[ảa]i\b|"
    r"\b(?:ongeza|iongeze|kuongeza|ongezea)\s+(?:\w+\s+)?(?:size|saizi|ukubwa|resolution)\b|"
    r"\bmore (?:pixels|resolution)\b|\bpa-?hd\b|"
    # "bring it up to a size I could print at 12 x 12 inches"
    r"\bbring (?:it|this|them) up to (?:a )?(?:size|\d)|\ba size (?:i|we) (?:could|can) print\b|"
    r"\b(?:is |it's |its |it is )?only \d{2,4} ?(?:px|pixels?)\b|"
    r"\bneed (?:it|this|them) (?:big|bigger|larger|huge|(?:at |in |to |as )?\d{3,5}(?: ?px)?)\b|"
    r"\bpara imprimir\b|"
    r"\bper (?:la )?stampa\b|\bzum drucken\b|"
    r"\bpour (?:l')?imprim\w*|\bom (?:af )?te drukken\b|"
    # "N times as big" of the given picture, in other languages
    r"\b(?:(?:twee|drie|vier|acht|[2-8]) ?(?:keer|maal) (?:zo )?(?:groot|groter)|"
    r"(?:doppelt|dreimal|viermal|zweimal|[2-8] ?mal) so gro(?:ß|ss)|"
    r"(?:deux|trois|quatre|[2-8]) fois plus grand\w*|(?:dos|tres|cuatro|[2-8]) veces m[áa]s grande|"
    r"(?:due|tre|quattro|[2-8]) volte pi[ùu] grande|(?:duas|tr[êe]s|quatro|[2-8]) vezes maior|"
    r"(?:twice|two times|three times|four times|[2-8] times|[2-8] ?x) (?:as )?(?:big|large|bigger|larger)|"
    r"pi[ùu] grande|m[áa]s grande|"
    r"plus grand)\b|"
    r"大きく(?:して|する)|크게|[2-8]\s*倍|"
    r"\bbüyüt\w*|\bbaskı için\b|\bförstora\w*|\bför utskrift\b|\bpowiększ\w*|\bdo druku\b|"  # noqa: RUF001
    r"увелич\w*\s+(?:\w+\s+)?(?:фото|изображени|снимо?к|картин|размер|разрешени)\w*|для печати|"
    r"\bzvětš\w*|\bpro tisk\b|\bphóng to\b|\bđể in\b|\b(?:perbesar|dibesar|besarkan|gedein|digedein)\w*|"
    r"(?<!\w)(?:كبّر|كبر|تكبير|قم بتكبير)(?!\w)|(?:ب)?دقة (?:أعلى|اعلى|عالية)|"
    r"\bampl[ií](?:a|e|ar)\s+(?:(?:esta|essa|a|la|mi|minha|este|el|o)\s+)?(?:foto\w*|imagem|imagen)\b|"
    r"\bpara impress[ãa]o\b|μεγέθυν\w*|για εκτύπωση|\bprint ke liye\b|\bbada kar\w*|"  # noqa: RUF001
    r"\baf te drukken\b|\bafdrukken\b|\bvergroten\b|"
    r"\bvergro(?:ot|ten)\s+(?:(?:deze|de|dit|mijn|het)\s+)?(?:foto|afbeelding|beeld)\b|\bom te printen\b",
    re.IGNORECASE)
_UPSCALE_VERB = re.compile(r"\bupscal\w*|\benlarg\w*|\bblow (?:it |this |them )?up\b|"
                           # the loanword in other languages: "oppskalere", "hochskalieren", "апскейл"
                           r"\b(?:opp|upp|op|hoch|re)skal\w*|\bupskal\w*|апскейл\w*|"
                           r"\bscale (?:it |this )?up\b|\b[2-8] ?x\b|\b(?:twice|double)\b", re.IGNORECASE)
# "generate 50 images of a cheetah ... then upscale x16": a second pass of the pictures it makes
_MAKE_THEN_UPSCALE = re.compile(r"\b(?:generate|create|make|draw|paint|render)\b[^.;!?]{0,120}?"
                                r"\b(?:then|and then|after that|afterwards)\s+"
                                r"(?:upscal|enlarg|scale (?:it |them )?up)",
                                re.IGNORECASE)
_UPSCALED_LOOK = re.compile(r"\bupscaled (?:look|style|feel|quality|vibe)\b|"
                            r"\b(?:like|as if|as though|jak po|wie nach|comme apr[èe]s)\s+"
                            r"(?:an?\s+|it was\s+)?upscal\w*",
                            re.IGNORECASE)
_UPSCALE_ADJECTIVE = re.compile(r"\bupscale (?:[a-z]+ )?(?:restaurants?|hotels?|bars?|boutiques?|"
                                r"neighbou?rhoods?|apartments?|fashion|stores?|shops?|lounges?|clientele|resorts?|dining|"
                                r"interiors?|homes?|mall|suburbs?|areas?|brands?|cafes?)\b", re.IGNORECASE)
# a mask the subject wears, not one the user gives
_SUBJECT_MASK = re.compile(
    r"\b(?:face|gas|ski|surgical|carnival|venetian|masquerade|halloween|hockey|goalie|goalkeeper|catcher'?s?|"
    r"ceremonial|ritual|african|maasai|mardi gras|"
    r"fencing|lucha|luchador|wrestling|oxygen|diving|scuba|sleep|eye|"
    r"death|tribal|golden|gold|iron|theatre|theater|kabuki|noh|oni|fox|bird|plague|party|welding|clay|beauty|"
    r"sheet|mud|paper|wooden|leather|silver|porcelain|animal|skull|demon)\s+masks?\b|"
    r"\b(?:wear(?:s|ing)?|wore|with|holding|behind|under|removes?|removing|takes? off|lifting|adjusting)\s+"
    r"(?:a|an|the|his|her|their)\s+(?:[\w-]+\s+){0,3}?masks?\b|"
    r"\b(?:in|with) (?:a|an|his|her|their) (?:[\w-]+\s+){0,3}?masks?\b"
    r"(?!\s+(?:area|region|image|file|shape))|"
    # "a mask-wearing guard", "half his face masked in shadow", "a masked vigilante"
    r"\bmask-?wearing\b|\bmasked\s+(?:in|by)\s+(?:deep\s+)?(?:shadows?|darkness|light|fog|mist|smoke)\b|"
    r"\bmasked\s+(?:man|woman|men|women|figures?|heroe?s?|vigilantes?|bandits?|robbers?|dancers?|strangers?|"
    r"riders?|singers?|wrestlers?|warriors?|knights?|ball|crusaders?|assassins?|thie(?:f|ves))\b",
    re.IGNORECASE)
_USER_MASK = re.compile(
    r"(?<![/\\.\w-])[\w-]*mask[\w-]*\.(?:png|jpe?g|webp|bmp|tiff?)\b|"  # a mask named as a file
    r"\b(?:my|this|our|the attached|attached|the given|the uploaded|the provided)\s+mask\b|"
    r"\bmask (?:is |was )?(?:attached|included|image|file|provided|given|uploaded)\b|"
    r"\bthe mask (?:marks|shows|covers|says|indicates|defines)\b|"
    r"\bmasked (?:area|region|part|zone|spot|section)\b|"
    r"\b(?:i|we)(?:'ve| have)? (?:masked|painted a mask|drew a mask|made a mask|marked)\b|\(mask\b|"
    r"\bwith (?:a |the )?mask\W*$|\bhere(?:'s| is|s) (?:a |the |my |our )?(?:white |black )?mask\b|"
    # "i colored it white in the other file": the user painted the mask
    r"\b(?:i|we)(?:'ve| have)? (?:colou?red|painted|marked|filled) (?:it|them|that|the \w+) (?:in )?white\b|"
    r"\b(?:marked|masked|covered|outlined|painted) (?:with|by|in) (?:a|the|my) mask\b|"
    r"\bthe mask (?:is )?(?:over|on|around)\b|"
    r"\b(?:the|a|my) (?:[\w-]+ ){0,2}?mask (?:that )?(?:i|we)(?:'ve| have)? (?:just )?(?:drew|drawn|made|"
    r"painted|created|did|prepared)\b|"  # "with the mask i drew (white blob bottom right)"
    r"\b(?:j'ai|on a) (?:fait|faite|dessin[ée]|peint|cr[ée][ée]) (?:un|le|mon|une) (?:mask|masque)\b|"
    r"\b(?:i'll|i will|i'm going to|let me|i can) (?:give|send|attach|upload|provide) (?:you )?(?:a|the|my) "
    r"(?:[\w-]+ )?mask\b|"
    # "blank canvas + mask: I drew a white blob top right", "i painted over him in white in the 2nd file"
    r"\+\s*(?:a\s+|the\s+)?mask\b|\b(?:i|we) (?:drew|painted|made|put) a white (?:blob|shape|circle|area|"
    r"patch|spot|region|box|rectangle)\b|"
    r"\b(?:painted|coloured|colored|marked|scribbled) over (?:him|her|it|them|that|the [\w-]+) (?:in|with) "
    r"white\b",
    re.IGNORECASE)


# the area a mask marks, for a new subject ("put a puppy only inside that area")
_INSIDE_AREA = re.compile(r"\b(?:only |just |exactly )?(?:inside|within|in|into) (?:that|this|the|its|my) "
                          r"(?:(?:white|masked|marked|painted) )?"
                          r"(?:area|region|part|zone|spot|shape|blob|space)\b|\b(?:inside|within) it\b",
                          re.IGNORECASE)


_PALETTE_STEM = re.compile(r"palet|paleta|палит|паліт|παλέτ|פלט|پالت|باليت|لوحة|팔레트|"
                           r"パレット|调色|調色|配色|swatch|skala|scheme|schema|esquema|sch[ée]ma",
                           re.IGNORECASE)
_PALETTE_NAMED = re.compile(r"palett|paleta|tavolozza|палитр|παλέτα|bảng màu|パレット|调色板|配色|swatch|"
                            r"\bcolou?r (?:chart|card|scheme)s?\b|\bcolou?rs? (?:of|from)\b", re.IGNORECASE)


# an English palette described by its colours, no picture of them: "snowy palette", "a warm muted colour
# palette"; one pointed at ("this palette", "the colour palette in the attached image") or named as a
# picture ("palette image") is given
_PALETTE_WORD = re.compile(r"\bpalettes?\b", re.IGNORECASE)
_POINTED_PALETTE = re.compile(r"\b(?:this|that|these|my|our|your|the|attached|given|uploaded|provided|same|"
                              r"reference|brand|using|use|with|from|of|in)\b", re.IGNORECASE)
_PALETTE_PICTURE = re.compile(r"^\s*(?:image|photo|picture|pic|file|swatch|reference|card|chart|in|from|of|"
                              r"that|i|we|attached|below|above)\b", re.IGNORECASE)


def _described_palettes(prompt: str) -> str:
    """``prompt`` without the palettes it only describes ("snowy palette")."""
    for m in reversed(list(_PALETTE_WORD.finditer(prompt))):
        before = prompt[:m.start()].split()[-3:]
        if any(_POINTED_PALETTE.fullmatch(w.strip(",;:")) for w in before) \
                or _PALETTE_PICTURE.match(prompt[m.end():]) or not before:
            continue
        prompt = prompt[:m.start()] + " " + prompt[m.end():]
    return prompt


def names_palette(prompt: str) -> bool:
    """Whether ``prompt`` names a palette (a swatch, a colour chart, "the colours of ...", a palette
    or colour scheme in a language of the lexicon), not only a verb of colouring ("colourise it
    naturally") or colours ("natürliche Farben": how to colour it, no picture of colours; "snowy
    palette": a description of the colours)."""
    prompt = _described_palettes(prompt)
    return bool(_PALETTE_NAMED.search(prompt)) or any(
        " " in m.group(0).strip() or _PALETTE_STEM.search(m.group(0))
        for m in lexicon.words_of("palette").finditer(prompt))


def mask_given(prompt: str) -> bool:
    """Whether the words of ``prompt`` say the user gives a mask: in English ("I drew a mask",
    "mask attached"), or a mask word beside a verb of giving in a language of the lexicon
    ("masku přikládám", "pakai mask yang aku kirim"); a worn mask never is."""
    prompt = fix_typos(normalize(prompt))[0]
    if _USER_MASK.search(prompt):
        return True
    if _SUBJECT_MASK.search(prompt):
        return False
    return lexicon.gives_input(prompt, _MASK_FOREIGN) \
        or lexicon.gives_input(prompt, lexicon.words_of("mask")) \
        or lexicon.points_at(prompt, lexicon.words_of("mask", spaced_only=True))  # "på min maske"


def gives_mask(prompt: str) -> bool:
    """Whether the words of ``prompt`` say the user gives a mask ("I masked the empty strips",
    "zaznaczyłem maską"), not one a subject wears ("a woman wearing a face mask")."""
    prompt = fix_typos(normalize(prompt))[0]
    if _USER_MASK.search(prompt):
        return True
    return bool(_MASK_FOREIGN.search(prompt)) and not _SUBJECT_MASK.search(prompt)


_MASK_WORD = re.compile(r"\bmask(?:s|ed)?\b|\bmarked\b", re.IGNORECASE)
_EDIT_VERBS = re.compile(
    r"\b(?:get rid of|take out|remove|erase|delete|replace|swap out|"
    r"quita\w*|elimina\w*|borra\w*|remueve|saca|"  # es
    r"entfern\w*|l[öo]sch\w*|ersetz\w*|"  # de
    r"supprim\w*|enl[èe]v\w*|retir\w*|effac\w*|remplac\w*|"  # fr
    r"rimuov\w*|togli\w*|cancell\w*|sostituisc\w*|"  # it
    r"remov\w*|apag\w*|substitu\w*|"  # pt
    r"удали\w*|убери\w*|замени\w*)\b|"  # ru
    r"消して|消す|削除|取り除|除去|去掉|删除|删掉|移除|去除|抹掉|替换|지워|제거", re.IGNORECASE)
# verbs that act only on a picture the user has ("poistaa ton tyypin", "tirar aquele poste", "colorize
# grandpa's portrait"): no new picture has anything to remove, colour in or extend (a subject's action,
# "a magician about to remove the cloth", is no edit)
_PICTURE_VERB = re.compile(r"\b(?:remove|erase|delete|get rid of|colou?ri[sz]e|colou?ri[sz]ed|uncrop|"
                           r"take (?:it|them|that|those|him|her) (?:away|out))\b", re.IGNORECASE)
# a background changed (a region of the given picture repainted): "swap out the background", Hinglish
# "uska background badal ke"
_NEW_BACKGROUND = re.compile(r"\b(?:change|replace|swap|switch)\s+(?:out\s+)?(?:the|its|his|her|their)\s+"
                             r"background|\bbackground\s+(?:ko\s+)?badal", re.IGNORECASE)
_SUBJECT_ACTION = re.compile(r"\b(?:about|going|trying|ready|starting) to\s+$|\b(?:is|are|was|were)\s+$",
                             re.IGNORECASE)


def _edits_given(prompt: str) -> bool:
    """Whether ``prompt`` asks for an edit only a given picture can have: something removed,
    coloured in or extended, a background changed, in English or a language of the lexicon."""
    for rx in (_PICTURE_VERB, _NEW_BACKGROUND, lexicon.words_of("remove"), lexicon.words_of("colorize"),
               lexicon.words_of("extend")):
        for m in rx.finditer(prompt):
            if not _SUBJECT_ACTION.search(prompt[max(0, m.start() - 20):m.start()]):
                return True
    return False


# a resolution tag ("4k", "8k") alone is a quality tag; beside words of a huge picture or of fine detail
# everywhere it asks for a picture larger than one pass makes
_RES_TAG = re.compile(r"\b(?:4|8|16) ?k\b|\b(?:uhd|ultra[- ]hd)\b", re.IGNORECASE)
_BIG_OR_FINE = re.compile(r"\b(?:huge|massive|giant|gigantic|enormous)\b|"
                          r"\b(?:lots of|tons of|full of) (?:tiny |fine |small |little )?details?\b|"
                          r"\btiny details\b|\bevery (?:single )?\w+(?: and \w+)? (?:is )?visible\b|"
                          # "4k wallpaper": a screen's pixels ("8k, ultra detailed" stays a quality tag)
                          r"\b(?:desktop )?wallpapers?\b|"
                          # "ve 4K na tisk", "4k for print": a print's pixels
                          r"\bfor print(?:ing)?\b|\bna tisk\b|\bdo druku\b|\bzum drucken\b|\bpara imprimir\b|"
                          r"\bpour (?:l')?impression\b|\bper (?:la )?stampa\b|\bf[öo]r tryck\b|\btil tryk\b",
                          re.IGNORECASE)
# a print a picture at the model's size cannot fill: "print it big", "300 dpi", an A2 poster
_BIG_PRINT = re.compile(r"\bprint (?:it |this |that )?(?:big|large|huge|really big)\b|"
                        r"\b(?:big|large|huge|giant) (?:canvas )?prints?\b|\b(?:[3-6]00) ?dpi\b|"
                        r"\bA[0-2]"
                        r"(?= ?(?:posters?|prints?|size|format|hochformat|querformat|canvas|plakat\w*|"
                        r"affiche|p[oó]ster|formaat)\b)",
                        re.IGNORECASE)
_HEX_COLOURS = re.compile(r"#[0-9a-f]{6}\b|#[0-9a-f]{3}\b", re.IGNORECASE)
_VERTICAL = re.compile(r"\b(?:vertical|portrait|phone|story)\b", re.IGNORECASE)
# one of several pictures the user gives, named by its place ("image B", "the second photo", "the
# other one", "the first one") or as a reference ("ref pic attached", "the reference image")
_ORDINAL_PICTURE = re.compile(
    # "image A", "photo b is the style", not "this photo a stormy sunset" (an article)
    r"\b(?:image|picture|photo|pic|foto|bild|imagen|immagine|imagem) (?:(?-i:[AB])|[12]|one|two|"
    r"[ab]"
    r"(?=\s*(?:$|[,.;:)!?=]|and\b|is\b|shows\b|has\b|as\b|with\b|for\b|in\b|into\b|on\b)))\b(?! (?:of|to)\b)|"
    r"\bthe (?:second|third|fourth|other|2nd|3rd|4th|last) (?:image|picture|photo|pic|one|shot|file)\b|"
    r"\b(?:second|third|2nd|3rd) (?:image|picture|photo|pic|shot)s? (?:is|shows|has)\b|"
    r"\b(?:ref|reference) (?:pic|image|photo|picture|shot|illustration|painting|drawing|artwork)s?\b|"
    r"\b(?:2nd|3rd|second|third) (?:image|picture|photo|pic|shot|file)\b(?! of\b)|"
    r"\b(?:sending|attaching|uploading|sent|attached|uploaded|here are) (?:you )?(?:3|three|4|four) "
    r"(?:things|files|pics|pictures|photos|images)\b|"
    # "I have two files for you: the first is a photograph ..., the second is a painting", "here's 2 pics"
    r"\b(?:i have|i've got|i got|got|here are|here's|heres|sending|attaching|uploading|sent|attached|"
    r"uploaded) "
    r"(?:you )?(?:2|two|both) (?:files|pics|pictures|photos|images|attachments|uploads)\b|"
    r"\b(?:the )?(?:first|1st)(?: one| file| pic)? (?:is|=|:)[^.;!?]{3,160}?\b(?:the )?(?:second|2nd)"
    r"(?: one| file| pic)? (?:is|=|:)|"
    # "attaching a pic of the tin as reference", "sending you my logo photo as the ref"
    r"\b(?:attach(?:ing|ed)?|send(?:ing)?|sent|upload(?:ing|ed)?|here(?:'s| is)|giving you) (?:you )?"
    r"(?:(?:a|an|the|my|our) )?(?:[\w'-]+ ){0,2}?(?:pic|photo|picture|image|shot)s? (?:of [^.;!?]{1,40}? )?"
    r"as (?:a |the |my )?(?:reference|ref)\b|"
    r"\b(?:the|a|my|our) (?:[\w'-]+ ){0,2}?(?:pic|photo|picture|image|shot)s? (?:that )?(?:i|we)(?:'ve)? "
    r"(?:attached|sent|uploaded|added|included) as (?:a |the )?(?:reference|ref)\b|"
    # "(first file)", "(2nd pic)": files labelled by their place; "plus a third picture of the clock"
    r"\((?:the )?(?:first|1st|second|2nd|third|3rd) (?:file|one|pic|image|photo|attachment)\)|"
    r"\b(?:plus|and|also|with) (?:a|the) (?:second|third|2nd|3rd) (?:image|picture|photo|pic|shot|file)\b|"
    r"\b(?:het |de )?(?:2e|2de|3e|3de) (?:plaatje|foto|afbeelding|bestand)\b|"
    r"\b(?:ref|reference) (?:is )?attached\b|\b(?:other|second|2nd|another) (?:file|upload|attachment)\b|"
    r"\b(?:this|that|the) other (?:[a-z-]+ ){0,2}?(?:image|picture|photo|pic|shot|one)\b|"
    r"\b(?:ilustra[cç][aã]o|imagem|foto|pintura|imagen|ilustraci[oó]n|immagine|illustrazione) "
    r"(?:de|di) refer[êeé]n[cz]\w*|"
    r"\b(?:segunda|seconda|zweiten?|tweede|deuxi[èe]me|druh\w+|drug\w+|andra|ikinci) "
    r"(?:foto\w*|imagem|imagen|immagine|bild\w*|afbeelding|image|photo|fotk\w*|zdjęci\w*|fotoğraf\w*|"
    r"schilderij|tekening|pintura|dipinto|gem[äa]lde|peinture|tableau|obraz\w*|obrázk\w*|resim\w*|målning\w*)|"
    r"(?<!\w)(?:втором|вторая|второй|вторую|второе)\s+(?:фото\w*|снимк\w*|изображени\w*|картин\w*)|"
    r"δεύτερη\s+(?:φωτογραφ\w*|εικόνα)|ảnh thứ hai|두 번째 (?:사진|이미지)|2枚目|第二张",
    re.IGNORECASE)
# a picture the user gives, with the noun that names it: "my photo", "the painting I uploaded",
# "this selfie", "the illustration I attached", "my living room photo"
# the picture nouns and the art a user may give as a second picture ("the watercolor I scanned")
_ART_PICTURE = (r"(?:" + _PICTURE + r"|watercolou?rs?|prints?|posters?|woodcuts?|collages?|comics?|etchings?|"
                r"mockups?|covers?)")
_GIVEN_NOUN = re.compile(
    r"\b(?:this|these|(?<!for )my|(?<!for )our|that|the (?:attached|given|uploaded|provided)|"
    r"here(?:'s| is| are) (?:the|a|an))\s+"
    r"(?:[a-z'-]+\s+){0,2}?"
    r"(?P<a>" + _ART_PICTURE + r")\b|"
    r"\b(?:the|a|an)\s+(?:[\w'-]+\s+){0,3}?(?P<b>" + _ART_PICTURE + r")\s+(?:that\s+)?(?:i|we)"
    r"(?:'ve|'m|'re| am| are| will|'ll)?\s+(?:just\s+|also\s+)?"
    r"(?:attached|uploaded|sent|shared|gave|added|made|drew|painted|took|shot|created|scanned|"
    r"attaching|uploading|sending|sharing|adding|giving)\b|"
    r"\b(?P<c>" + _ART_PICTURE + r")\s+(?:is\s+)?attached\b", re.IGNORECASE)
# a given picture told by what the user did with it ("the picture I made yesterday (attached)")
_MADE_PICTURE = re.compile(
    r"\bthe (?:[a-z]+ ){0,2}" + _PICTURE + r" (?:that )?(?:i|we) (?:made|drew|painted|created|did|took)\b|"
    r"\((?:see )?attached\)|"
    r"\b(?:i|we|he|she|they|(?:my|our) (?:[a-z]+ )?(?:son|daughter|kid|child|boy|girl|kids|children|friend|"
    r"wife|husband|mum|mom|dad|grandson|granddaughter|niece|nephew|student|partner))(?: just)? "
    r"(?:drew|painted|sketched|made|took|shot) (?:this|these|that)\b"
    r"(?! (?:conclusion|lesson|idea|inspiration|line|card|number|name|breath|decision|mistake|choice)s?\b)|"
    r"\b(?:this|that|here)(?:'s| is) (?:a|an|my|the) (?:[a-z]+ ){0,2}?(?:photo|pic|snap|snapshot|"
    r"shot|picture|"
    r"selfie|photograph|image)s? of\b[^.;!?]{0,80}\b(?:redo|re-do|make|turn|change|edit|fix|can (?:you|u)|"
    r"could (?:you|u)|please|pls|plz)\b|"
    r"\b(?:i|we) (?:took|shot|snapped) (?:a|an|this|one) (?:[a-z]+ )?"
    r"(?:photo|picture|pic|snapshot|selfie|shot|photograph)s? of\b[^.;!?]{0,80}"
    r"\b(?:make|turn|change|edit|fix|give|can you|could you|please)\b|"
    r"\b(?:i|we)(?: have| 've|'ve| have got|'ve got| got)\s+(?:a|an|this|one|some)\s+"
    r"(?:(?:old|nice|lovely|great|favou?rite|little|blurry|faded|scanned|digital)\s+)?"
    r"(?:photo|picture|pic|snapshot|photograph|selfie|scan|render|drawing|sketch)s?\s+(?:of|from)\s+"
    r"(?:my|our|his|her|their|me|us|the)\b|"
    # "attached: photo of my studio", "on the card art attached", "got a sleeve photo from a client"
    r"^\W*attached\s*[:\-\u2013]|"
    r"\b(?:1st|first|2nd|second|3rd|third) (?:attachment|upload|attached file)\b|"
    r"\b(?:card |cover |box |concept |key |fan |pixel |line )?art(?:work)?s? "
    r"(?:is )?attached\b|"
    r"\b(?:got|received|been sent|was sent|were sent) (?:a|an|this|these|some|the) (?:[\w'-]+ ){0,4}?"
    + _PICTURE + r" from\b|"
    # "I drew a rough pencil sketch of our lodge - turn it into a realistic photo"
    r"\b(?:i|we) (?:drew|painted|sketched|made|did|rendered|doodled) (?:a|an|this|one|some) "
    r"(?:[\w'-]+ ){0,3}?"
    r"(?:sketch(?:es)?|drawings?|paintings?|doodles?|renders?|pictures?|pics?|line ?art)\b[^.;!?]{0,80}"
    r"\b(?:turn|make|change|convert|redo|colou?r|render) (?:it|this|them|that)\b", re.IGNORECASE)


# two pictures the user sends, named in one breath ("I'm attaching my photo and the album cover I
# love", "Прилагаю фотографию ... и репродукцию картины")
_TWO_FOREIGN = re.compile(
    r"\b(?:attach(?:ing|ed)?|send(?:ing)?|sent|upload(?:ing|ed)?|here (?:are|is)|giving you)\b[^.;]{0,30}?"
    r"\b(?:my|a|the|this) (?:[a-z]+ )?(?:photo|picture|pic|image|selfie|snap|shot|portrait)s? "
    r"(?:and|plus|\+|together with|along with) (?:a|an|the|my|this|one) (?:[a-z'-]+ ){0,2}?"
    r"(?:" + _ART_PICTURE + r"|(?:album |book |magazine )?covers?|film stills?|screenshots?)\b|"
    r"(?<!\w)(?:отправляю|прилагаю|прикладываю|посылаю|скидываю|прикрепляю|прикрепил\w*|загрузил\w*|"
    r"отправил\w*)\s+(?:\w+\s+)?(?:фото\w*|снимок|изображени\w*|картин\w*|рисун\w*)[^.;!?]{0,60}?"
    r"\s(?:и|а также|плюс)\s+(?:\w+\s+)?(?:картин\w*|репродукци\w*|рисун\w*|фото\w*|снимок|кадр\w*|"  # noqa: RUF001
    r"изображени\w*)", re.IGNORECASE)
# words of a new picture ("nyt billede: ... i det hvide område på min maske"): a mask given with them
# places its subject, there is no picture to repaint
_NEW_PICTURE = re.compile(r"\b(?:a )?new (?:picture|image)\b|\b(?:blank|empty|new) canvas\b|\bnyt billede\b|"
                          r"\bnytt bilde\b|\bny bild\b|"
                          r"\bneues bild\b|\bnieuwe afbeelding\b|\bnouvelle image\b|\bnueva imagen\b|"
                          r"\bnuova immagine\b|\bnova imagem\b|\bnowy obraz\w*|"
                          r"\bнов\w+ (?:изображени|картин)\w*",  # noqa: RUF001
                          re.IGNORECASE)
# the rest of a new picture described beside the masked area ("put a cheetah there, rest is savanna")
_REST_IS = re.compile(r"\b(?:the )?rest (?:is|=|should be|will be|of (?:it|the (?:image|picture|scene)) "
                      r"is)\b|\beverywhere else\b|\bthe rest (?:a|an|as|with)\b|"
                      r"\b(?:the )?rest of (?:the )?(?:image|picture|scene|frame|canvas)\b|"
                      r"\ble reste\b|\bel resto\b|\bil resto\b|\bo resto\b|\bder rest\b|\bden rest\b|"
                      r"\by de fondo\b|\bet en fond\b|\be (?:sullo |come )?sfondo\b",
                      re.IGNORECASE)
_MASK_IS = re.compile(r"\bmask\b[^.;!?]{0,28}?(?:\bis|=|:|-)\s*(?:the|in the|on the|in|on)?\s*$|"
                      r"\b(?:in|with|it|them|that) white (?:in|on)(?: the| my)?\s*$|"
                      # "i painted the glare white in the second file"
                      r"\bmask\b[^.;!?]{0,12}?(?:\bis|=|:|-)\s*the white "
                      r"(?:bit|bits|part|parts|area|areas|spot|blob)s? "
                      r"(?:in|on)(?: the| my)?\s*$|"
                      r"\b(?:painted|marked|colou?red|filled|masked|drew)\b[^.;!?]{0,30}\bwhite (?:in|on)"
                      r"(?: the| my)?\s*$", re.IGNORECASE)
_IS_MASK = re.compile(r"[^.;!?]{0,12}?\(?\s*(?:that's|that is|which is|is|=|as)\s+(?:the |my )?mask\b",
                      re.IGNORECASE)
_PHOTO_NOUNS = ("photo", "image", "picture", "pic", "foto", "snapshot", "snap", "photograph", "shot",
                "selfie", "headshot", "portrait", "scan", "screenshot", "capture", "jpeg", "jpg", "png",
                "still", "frame")


def _stem(noun: str) -> str:
    """A given picture's kind: every word for a photo is one kind (so "my photo ... this image" is one
    picture), every word for a drawing another ("my sketch ... my drawing"); a painting, an
    illustration, a render each its own."""
    noun = re.sub(r"[\s]", "", noun.lower())
    noun = noun[:-2] if noun.endswith("es") and noun[:-2].endswith("sketch") else noun.rstrip("s")
    if noun in ("sketch", "drawing", "doodle", "lineart", "line art"):
        return "drawing"  # "my pencil sketch ... exactly like my drawing": one drawing
    return "photo" if noun in _PHOTO_NOUNS else noun


def two_pictures(prompt: str) -> bool:
    """Whether ``prompt`` names two pictures the user gives: one by its place or as a reference
    ("image B", "the second photo", "ref pic attached"), or two given pictures of different nouns
    ("my photo and the painting I uploaded", "my portrait and the illustration I attached")."""
    found = list(_ORDINAL_PICTURE.finditer(prompt))
    masks = [m for m in found if _IS_MASK.match(prompt, m.end())  # "on the second file (that's the mask)",
             or _MASK_IS.search(prompt[max(0, m.start() - 40):m.start()])]  # "mask is the 2nd file"
    ordinals = [m for m in found if m not in masks]
    unmasked = prompt  # the mask's place is no second picture for the lexicon either
    for m in reversed(masks):
        unmasked = unmasked[:m.start()] + " mask " + unmasked[m.end():]
    if ordinals or _TWO_FOREIGN.search(prompt) or lexicon.pictures(unmasked, _OTHER_INPUT) >= 2:
        return True
    given = list(_GIVEN_NOUN.finditer(prompt))
    nouns = {_stem(next(g for g in m.groups() if g)) for m in given}
    if nouns:  # and the picture an edit names ("make the photo of my layout look like the cover I attached")
        edited = _COMPILED["image-to-image"].search(prompt)
        found = re.search(r"\b(" + _PICTURE + r")\b", edited.group(0), re.IGNORECASE) if edited else None
        # one noun phrase is one picture: "here's our box cover render" (cover, render)
        if found and not any(m.start() <= edited.start() + found.start() <= m.end() + 12 for m in given):
            nouns.add(_stem(found.group(1)))
    return len(nouns) >= 2

# what each label means, for an embedding model to compare prompts with
DESCRIPTIONS: dict[str, str] = {
    "people": "a person, a portrait, people, a human face or figure",
    "animals": "a pet or domestic animal such as a cat, a dog or a horse",
    "wildlife": "a wild animal in its habitat, wildlife photography",
    "nature": "plants, trees, flowers, a forest, a garden",
    "landscapes": "a landscape: mountains, lakes, the sea, a valley, the sky at sunset",
    "urban": "a city, streets, buildings, architecture",
    "objects": "a product shot or still life of an object",
    "food": "food and drink, a dish, a meal",
    "photo-realistic": "a realistic photograph",
    "painting": "a painting in oil or watercolour",
    "illustration": "an illustration, drawing, cartoon or concept art",
    "anime": "anime or manga style art",
}


@dataclass
class Labels:
    """A prompt's labels, by group."""

    subjects: list[str] = field(default_factory=list)
    styles: list[str] = field(default_factory=list)
    formats: list[str] = field(default_factory=list)
    task: str = "text-to-image"
    intents: list[str] = field(default_factory=list)
    # the width / height a size, ratio or paper size in the prompt gives (None without one, or when
    # the prompt names a panorama): what decides between the plain and the panorama template
    aspect: float | None = None
    # a model family the prompt asks for ("sdxl"): templates made for it go first
    family: str | None = None

    def all(self) -> list[str]:
        """Every label, flat and sorted (what the score table is keyed by)."""
        return sorted({*self.subjects, *self.styles, *self.formats, *self.intents, self.task})

    def content(self) -> list[str]:
        """Subjects and styles only: what a template's quality depends on."""
        return sorted({*self.subjects, *self.styles})

    def to_dict(self) -> dict[str, Any]:
        return {"subjects": list(self.subjects), "styles": list(self.styles),
                "formats": list(self.formats), "task": self.task, "intents": list(self.intents)}

    @classmethod
    def from_list(cls, labels: Iterable[str]) -> Labels:
        """Sort a flat list of labels into groups; unknown labels are kept as subjects."""
        out = cls()
        tasks = []
        for label in labels:
            name = str(label).strip().lower()
            if not name:
                continue
            if name in TASKS:
                tasks.append(name)
            elif name in STYLES:
                _add(out.styles, name)
            elif name in FORMATS:
                _add(out.formats, name)
            elif name in INTENTS:
                _add(out.intents, name)
            else:
                _add(out.subjects, name)
        if tasks:
            out.task = "inpaint" if "inpaint" in tasks else tasks[0]
        return out


def _add(target: list[str], label: str) -> None:
    if label not in target:
        target.append(label)


Embedder = Callable[[list[str]], list[list[float]]]


def classify(prompt: str, *, embedder: Embedder | None = None, threshold: float = 0.35) -> Labels:
    """The labels of ``prompt``: keyword rules first; an ``embedder`` (texts -> vectors) adds
    subject and style labels whose description is close to the prompt (cosine >= threshold)
    and, when the rules found no subject, the closest subject."""
    # the rules read key words with their typos fixed ("potrait") and full-width forms as ASCII; a user's
    # word that nothing is given ("no image uploaded, text only") is no picture's word
    prompt = _TEXT_ONLY.sub(" ", without_paths(fix_typos(normalize(prompt))[0]))
    # "this photo" names the input, not the style; "phone wallpaper" a format, not a phone:
    # styles are matched without input phrases, subjects without input and format phrases
    styled = _INPUT_PHRASE.sub(" ", prompt)
    content = strip_shapes(styled)
    for label in FORMATS:
        content = _COMPILED[label].sub(" ", content)
    unquoted = _QUOTED.sub(" ", prompt)  # a title or words to render ("the 'Mask & Milonga' festival")
    found = {label for label, rx in _COMPILED.items()
             if rx.search(content if label in SUBJECTS else styled if label in STYLES
                          else unquoted if label in TASKS else prompt)}
    shape = find_shape(prompt)  # an orientation or format phrase in any language wins
    if shape is not None:
        found.discard("tall" if shape.format == "wide" else "wide")
        found.add(shape.format)
    labels = Labels(
        subjects=[s for s in SUBJECTS if s in found],
        styles=[s for s in STYLES if s in found],
        formats=[f for f in FORMATS if f in found],
    )
    if "large" not in labels.formats and ((_RES_TAG.search(prompt) and _BIG_OR_FINE.search(prompt))
                                          or _BIG_PRINT.search(prompt)):
        labels.formats.append("large")  # "huge 4K wallpaper, crisp detail everywhere": two tiled passes
    if "wide" in found and "tall" in found:
        labels.formats.remove("tall" if not _VERTICAL.search(prompt) else "wide")
    # words in quotes are words to render ("a whiteboard that says 'upscale this image'"), no instruction
    labels.intents = [i for i in INTENTS if _INTENT_COMPILED[i].search(unquoted)]
    _lexicon_intents(unquoted, labels)
    given_map = _GIVEN_MAP.search(prompt) or _OWN_MAP.search(prompt) or _MAP_FILE.search(prompt) \
        or _given_control(prompt)
    if given_map:  # a map the user has ("my canny edge map") is a control image, not a photo to read
        labels.intents = [i for i in labels.intents if i not in ("edges", "depth")]
        if "palette" in labels.intents and not re.search(r"\bpalettes?\b|\bcolou?rs? (?:of|from)\b", prompt,
                                                         re.IGNORECASE):
            labels.intents.remove("palette")  # "colorize my lineart as anime": the map drawn in colour
        if "pose" not in labels.intents:
            _add(labels.intents, "control")
        # "(attached png)" beside a map is the map's attachment, not a picture's
        rest = _ATTACHED_NOTE.sub(" ", prompt[:given_map.start()] + " " + prompt[given_map.end():])
        if not _COMPILED["image-to-image"].search(rest):
            found.discard("image-to-image")
    elif ("control" in labels.intents or ("pose" in labels.intents and not _POSE_FROM.search(prompt))) \
            and _given_picture(prompt):
        # "keep the composition of my photo", "turn my photo into a statue, keep the pose": the photo is
        # redrawn, its outlines keep the pose and the layout (a pose taken from a picture for a new
        # subject, "a knight in the same pose as the person in this photo", stays a pose to follow)
        labels.intents = [i for i in labels.intents if i not in ("control", "pose")]
        _add(labels.intents, "edges")
    if _given_foreign(prompt) or lexicon.gives_picture(prompt, _OTHER_INPUT):
        found.add("image-to-image")
        if _MASK_FOREIGN.search(prompt) or lexicon.words_of("mask").search(prompt):
            found.add("inpaint")
    if "image-to-image" not in found and not given_map and _edits_given(prompt):
        found.add("image-to-image")  # "voisitsä poistaa ton tyypin tosta taustalta": a given picture's
    if "image-to-image" not in found and "mask-region" not in labels.intents and mask_given(prompt):
        if (_INSIDE_AREA.search(prompt) or _REST_IS.search(prompt) or _NEW_PICTURE.search(prompt)) \
                and not _REPAINT.search(prompt):
            labels.intents.append("mask-region")  # "I drew a mask - put a puppy only inside that area"
        else:  # "masku přikládám, doplň tam kus oblohy": a mask is of a picture to repaint
            found.add("inpaint")
    if "detail" in labels.intents and "image-to-image" in found \
            and not (_MASK_WORD.search(prompt) or _MASK_FOREIGN.search(prompt)):
        found.discard("inpaint")  # "fix the face in this photo": a detail pass of the given picture
    if "regions" not in labels.intents and foreign_regions(prompt) >= 2 \
            and len(split_regions(prompt)[1]) >= 2:
        labels.intents.append("regions")  # "un renard à gauche et une chouette à droite", "左边...右边..."
    if "regions" in labels.intents and shape is not None and shape.kind == "spread" \
            and len(split_regions(prompt)[1]) < 2:
        labels.intents.remove("regions")  # "two A4 pages side by side": a book spread, one picture
    if "regions" in labels.intents and _COUNTED_SIDE_BY_SIDE.search(prompt) \
            and not _NAMED_SIDE.search(english_sides(prompt)):
        labels.intents.remove("regions")  # "2 nightstands side by side": one picture of both
    if "regions" in labels.intents and not _SPLIT.search(prompt) and len(split_regions(prompt)[1]) < 2:
        labels.intents.remove("regions")  # "a road curving to the right": one side is no composition
    unmapped = _ATTACHED_NOTE.sub(" ", prompt[:given_map.start()] + " " + prompt[given_map.end():]) \
        if given_map else prompt
    given = "image-to-image" in found or _given_foreign(prompt)
    made = given or bool(_MADE_PICTURE.search(unmapped))  # "concept art attached is only 512px": given too
    second = lexicon.second_picture_role(prompt, _OTHER_INPUT) if given else None
    if second and not set(labels.intents) & {"style", "palette", "reference"}:
        _add(labels.intents, second)  # "la foto del mio outfit nello stile del dipinto che ti allego"
    if "palette" in labels.intents and not given and _HEX_COLOURS.search(prompt):
        labels.intents.remove("palette")  # "use this palette: #1b2a4a #e8d5b7": the colours, written out
    for intent, explicit in _NEEDS_GIVEN.items():  # "a muted colour palette": a style, not an input
        if intent in labels.intents and not given and not explicit.search(prompt):
            labels.intents.remove(intent)
    if made and "upscale" not in labels.intents \
            and (_UPSCALE_GIVEN.search(prompt) or lexicon.words_of("upscale").search(prompt)) \
            and not set(labels.intents) & {"style", "palette", "depth", "edges", "control", "pose", "detail"}:
        _add(labels.intents, "upscale")  # "make this pic print size without getting blurry"
    if "upscale" in labels.intents and not made and "image-to-image" not in found \
            and (not _UPSCALE_VERB.search(prompt) or _MAKE_THEN_UPSCALE.search(prompt)
                 or _UPSCALED_LOOK.search(prompt)):
        # "SDXLで大きな高解像度で描いてください": a new picture at high resolution, a second pass
        labels.intents[labels.intents.index("upscale")] = "hires"
    if "upscale" in labels.intents and _UPSCALE_ADJECTIVE.search(prompt) and not given:
        labels.intents.remove("upscale")  # "an upscale restaurant"
    if "pose" in labels.intents and "control" in labels.intents:
        labels.intents.remove("control")
    if "inpaint" in found and _SUBJECT_MASK.search(prompt) and not _USER_MASK.search(prompt) \
            and "image-to-image" not in found and not _INTENT_COMPILED["mask-region"].search(prompt) \
            and not re.search(r"\binpaint", prompt, re.IGNORECASE):
        found.discard("inpaint")  # "a woman wearing a face mask": the subject's mask
    if "mask-region" in labels.intents and "regions" in labels.intents and mask_given(prompt):
        labels.intents.remove("regions")  # "I drew a mask (white blob on the right) ... in the mask: X"
    if "mask-region" in labels.intents and ("reference" in labels.intents or "image-to-image" in found
                                            or _REPAINT.search(prompt)):
        labels.intents.remove("mask-region")  # the masked area of a given image: an edit
        found.add("inpaint")
    if "mask-region" in labels.intents:
        found.discard("inpaint")  # a prompt for the masked area of a new picture, not an edit
    if "upscale" in labels.intents and "hires" in labels.intents:
        # "generate small, then upscale": a second pass of a new picture; "upscale this photo to high
        # resolution": an upscale of the given one
        labels.intents.remove("hires" if "image-to-image" in found else "upscale")
    elif "hires" in labels.intents and "image-to-image" in found and "inpaint" not in found:
        labels.intents[labels.intents.index("hires")] = "upscale"  # "this photo, but high res"
    if "detail" in labels.intents and "image-to-image" not in found:
        found.discard("inpaint")  # "then fix the face": a detail pass of the new picture
    if "image-to-image" in found and (_EDIT_VERBS.search(prompt) or _misspelt_edit(prompt)
                                      or lexicon.words_of("remove").search(prompt)
                                      or _NEW_BACKGROUND.search(prompt)):
        found.add("inpaint")  # "get rid of the power lines in this photo": an edit of a region
    if _MADE_PICTURE.search(unmapped):
        found.add("image-to-image")  # "the picture I made yesterday (attached)"
    if "upscale" in labels.intents and lexicon.has_word(prompt, "extend") \
            and (any(lexicon.has_word(prompt, side) for side in ("left", "right", "top", "bottom"))
                 or explicit_ratio(prompt) is not None):
        # "amplia la imatge cap a la dreta, que quedi 16:9": a word of both enlarging and extending, with a
        # side or a new shape, extends the picture (an upscale keeps its shape)
        labels.intents.remove("upscale")
    if (asks_outpaint(prompt) and _given_picture(prompt)) or _STRONG_OUTPAINT.search(prompt) \
            or (lexicon.has_word(prompt, "extend") and "upscale" not in labels.intents
                and ("image-to-image" in found or lexicon.gives_picture(prompt, _OTHER_INPUT))):
        # "extend this photo to 16:9", "uncrop": an inpainting of the padded border (agents.outpaint)
        labels.intents = [i for i in labels.intents if i not in ("upscale", "regions", "hires")]
        _add(labels.intents, "outpaint")
        found.add("inpaint")
    if ("image-to-image" in found or "inpaint" in found) and "outpaint" not in labels.intents \
            and two_pictures(prompt) \
            and not set(labels.intents) & {"style", "palette", "reference", "upscale", "detail", "depth",
                                           "edges", "control", "pose"}:
        _add(labels.intents, "reference")  # the second picture: what to put there, or (below) its style
    if "reference" in labels.intents and "inpaint" not in found and "image-to-image" in found \
            and "palette" not in labels.intents:
        _add(labels.intents, "style")  # "painted like this reference painting": its style
    if "inpaint" in found:
        labels.task = "inpaint"
        _add(labels.styles, "edit")
    elif "image-to-image" in found or any(i in labels.intents for i in
                                          ("style", "palette", "depth", "edges", "upscale")):
        labels.task = "image-to-image"
    if "reference" in labels.intents and labels.task != "inpaint":
        labels.intents.remove("reference")  # a reference image means something only for an edit
    if labels.task != "text-to-image":  # compositions of a new picture do not apply to a given one
        new_only = ("regions", "mask-region", "hires") + (("detail",) if labels.task == "inpaint" else ())
        labels.intents = [i for i in labels.intents if i not in new_only]
    if embedder is not None:
        _embedding_labels(prompt, labels, embedder, threshold)
    return labels


# the user says there is no picture ("no image attached", "I didn't upload anything, text only",
# "이미지 업로드 안함 텍스트만"): the prompt describes a new one
_TEXT_ONLY = re.compile(
    r"\b(?:i )?(?:didn't|did not|haven't|have not|won't|will not|i'm not|am not|not) "
    r"(?:attach|upload|send|includ)\w*(?: (?:a|an|any|the|anything))?"
    r"(?: (?:image|picture|photo|pic|file)s?)?\b|"
    r"\bno (?:image|picture|photo|pic|file|attachment|input image)s? (?:is |was )?(?:attached|uploaded|given|"
    r"provided|included|sent)\b|\b(?:nothing|none) (?:is |was )?(?:attached|uploaded)\b|"
    r"\b(?:text[- ]only|just (?:the )?text|only (?:the )?text)(?: prompt)?\b|"
    r"\b(?:image|mask|reference|style|palette|control|input)s?\s*[:=]\s*(?:none|null|nothing|n/?a)\b|"
    # "the attached file was too big to upload so here's what i want", "isnt attached yet so ignore that"
    r"\btoo (?:big|large) to (?:upload|attach|send)\b|"
    r"\b(?:couldn't|could not|can't|cannot) (?:upload|attach)\b|"
    r"\b(?:isn't|isnt|is not|wasn't|wasnt|was not) (?:attached|uploaded)(?: yet)?\b|"
    r"\b(?:solo texto|nur text|seulement (?:du )?texte|s[óo] texto)\b|только текст|"
    r"(?:이미지|사진|그림|파일)?\s*(?:업로드|첨부)\s*(?:안\s*함|안\s*했\w*|없음|안\s*해\w*)|텍스트만\w*",
    re.IGNORECASE)
# a file system path ("/etc/shadow", "~/x.png", "../secrets.png", "C:\\x", "..\\Windows"): never an input
_PATH = re.compile(r"(?:^|(?<=[\s(\"'`]))(?:/(?=[\w.~-])|~/|\.\.?[/\\]|[a-z]:\\)\S*", re.IGNORECASE)
_SENTENCE_END = re.compile(r"(?<=[.!?;])\s+|\n")
_CLAUSE = re.compile(r",\s*|\s+(?:and|then|also)\s+", re.IGNORECASE)
# words of a prompt injection ("ignore all previous instructions", "developer mode", "SYSTEM:"): there a
# path is an attack on the daemon, and no sentence naming one is read
_INJECTION = re.compile(r"\bignore\b[^.]{0,40}\b(?:instructions?|rules|prompt|template)\b|"
                        r"\bdeveloper mode\b|"
                        r"\bsystem\s*(?:prompt|override|:)|<\|system\|>|[{\[]\s*\"\w+\"\s*:", re.IGNORECASE)
# a clause that sends the output or a node to a path ("save it to ..\\Windows", "writes to /etc/cron.d")
_IMAGE_FILE = re.compile(r"\.(?:png|jpe?g|webp|bmp|tiff?|gif|heic|heif|avif|cr2|cr3|nef|arw|dng|orf|rw2|raf|"
                         r"raw)$", re.IGNORECASE)
# a path named as a place ("and also to ../etc/cron.d/x", "set the model to ../evil.ckpt"), not a file to read
_PLACE_BEFORE = re.compile(r"\b(?:to|into|onto|in|at|under)\s*$", re.IGNORECASE)
# a file named as the picture to work on ("load /etc/passwd as the input image"): the given picture, by role
_AS_INPUT = re.compile(r"\b(?:load|open|use|take|read|edit)\b|"
                       r"\bas (?:the |an? |my )?(?:input |init |initial |"
                       r"source |base |starting )?(?:image|picture|photo|img)\b", re.IGNORECASE)
_TO_PATH = re.compile(r"\b(?:save|saves|saved|saving|write|writes|writing|output|store|put|copy|send)\b",
                      re.IGNORECASE)


def has_paths(prompt: str) -> bool:
    """Whether ``prompt`` names a file system path (the planner never reads one: inputs come only
    from the files given by role)."""
    return bool(_PATH.search(prompt))


def strip_paths(text: str) -> str:
    """``text`` without its file system paths (what the text encoder is given: a path is nothing to
    draw, and the prompt text is kept in the job's record)."""
    return _PATH.sub(" ", text)


def without_paths(prompt: str) -> str:
    """``prompt`` as the rules read it when it names file system paths. Paths to picture files only,
    none sent anything: each is "the given picture" (the file given by role, never the path:
    "colorize C:\\opa_1921.jpg" colours the given image). A prompt sending something to a path ("and
    save it to ..\\Windows") is hostile: no clause of it that sends to a path, names one as a place or
    is only a path is read; a path to another file named as the picture to work on is read as the given
    picture too ("load /etc/passwd as the input image and make it pretty" asks for the image by role and
    reads no file) unless the prompt also sends something to a path; any other clause naming one is
    dropped; in a prompt injection ("ignore all previous instructions", graph JSON) no sentence naming a
    path is read."""
    if not _PATH.search(prompt):
        return prompt
    clauses = _CLAUSE.split(prompt)
    if _INJECTION.search(prompt):
        return " ".join(s for s in _SENTENCE_END.split(prompt) if s.strip() and not _PATH.search(s))
    def pictures(text: str) -> bool:
        return all(_IMAGE_FILE.search(m.group(0).rstrip(".,;:!?)]}'\"")) for m in _PATH.finditer(text))

    sends = any(_PATH.search(c) and _TO_PATH.search(c) for c in clauses)
    if pictures(prompt) and not sends:
        return _PATH.sub("the given picture", prompt)
    def hostile(clause: str) -> bool:  # sends to a path, names one as a place, or a file not as the input
        if not _PATH.search(clause):
            return False
        if _TO_PATH.search(clause) or not re.search(r"[^\W\d_]", _PATH.sub("", clause)) \
                or any(_PLACE_BEFORE.search(clause[:m.start()]) for m in _PATH.finditer(clause)):
            return True
        return not pictures(clause) and (sends or not _AS_INPUT.search(clause))

    return ", ".join(_PATH.sub("the given picture", c) for c in clauses if c.strip() and not hostile(c))


_ATTACHED_NOTE = re.compile(r"\((?:see )?attached[^)]{0,20}\)", re.IGNORECASE)
_QUOTED = re.compile(r"(?<!\w)'[^'\n]{1,60}'(?!\w)|\"[^\"\n]{1,60}\"|"
                     r"[\u201c\u00ab\u300c][^\n]{1,60}?[\u201d\u00bb\u300d]")
# the technical names of a control map, which users keep in English in any language
_CONTROL_WORD = re.compile(r"\b(?:canny|openpose|line ?art|depth ?map|normal ?map|scribble|controlnet|"
                           r"pose skeleton|lijntekening\w*|strichzeichnung\w*|linienzeichnung\w*|djupkart\w*|"
                           r"dybdekort\w*)\b|"
                           r"лайнарт\w*|ラインアート|线稿|라인아트", re.IGNORECASE)


def _given_control(prompt: str) -> re.Match[str] | None:
    """The control word a verb of giving stands beside, or a pointing word stands before, in any
    language of the lexicon ("мій лайнарт (контури canny, додаю файлом)"): the user gives that map."""
    found = _CONTROL_WORD.search(prompt)
    if found and (lexicon.gives_input(prompt, _CONTROL_WORD) or lexicon.points_at(prompt, _CONTROL_WORD)):
        return found
    return None


def _lexicon_intents(prompt: str, labels: Labels) -> None:
    """The intents the words of another language name (:mod:`agents.lexicon`): a second pass
    ("în două treceri"), a fix of a face or hands ("popraw twarz"); the sides of a picture are
    read by :func:`agents.regions.english_sides`."""
    faces = lexicon.words_of("face").search(prompt) or lexicon.words_of("hand").search(prompt)
    if not {"hires", "detail"} & set(labels.intents) and lexicon.words_of("hires").search(prompt):
        labels.intents.append("detail" if faces else "hires")  # "pass kedua khusus wajah": over the faces
    if "detail" not in labels.intents and lexicon.words_of("fix").search(prompt) \
            and (lexicon.words_of("face").search(prompt) or lexicon.words_of("hand").search(prompt)):
        labels.intents.append("detail")


def _given_foreign(prompt: str) -> bool:
    """Whether a given-picture phrase of another language stands in ``prompt`` with no negation in the
    three words before it ("helst inga människor på bilden": no people in the picture, a new one)."""
    for m in _GIVEN_FOREIGN.finditer(prompt):
        before = re.findall(r"[^\W\d_]+", prompt[:m.start()].lower())[-3:]
        if not lexicon.NEGATIONS.intersection(before):
            return True
    return False


def _given_picture(prompt: str) -> bool:
    return bool(_COMPILED["image-to-image"].search(prompt) or _given_foreign(prompt)
                or _MADE_PICTURE.search(prompt) or lexicon.gives_picture(prompt, _OTHER_INPUT))


def _misspelt_edit(prompt: str) -> bool:
    """Whether a word of ``prompt`` is an edit verb with two letters swapped ("remvoe",
    "repalce"); one letter off is not enough ("remote" is not "remove")."""
    verbs = ("remove", "erase", "replace", "delete")
    for w in re.findall(r"[a-z]{5,}", prompt.lower()):
        for v in verbs:
            if len(w) == len(v) and w != v and sorted(w) == sorted(v) \
                    and sum(a != b for a, b in zip(w, v, strict=True)) == 2:
                return True
    return False


def _embedding_labels(prompt: str, labels: Labels, embedder: Embedder, threshold: float) -> None:
    names = list(DESCRIPTIONS)
    vectors = embedder([prompt, *(DESCRIPTIONS[n] for n in names)])
    query, rest = vectors[0], vectors[1:]
    sims = {n: _cosine(query, v) for n, v in zip(names, rest, strict=True)}
    for name, sim in sims.items():
        if sim >= threshold:
            _add(labels.subjects if name in SUBJECTS else labels.styles, name)
    if not labels.subjects:
        best = max((n for n in names if n in SUBJECTS), key=lambda n: sims[n])
        labels.subjects.append(best)
    labels.subjects.sort(key=SUBJECTS.index)
    labels.styles.sort(key=STYLES.index)


def _cosine(a: list[float], b: list[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=False))
    na = sum(x * x for x in a) ** 0.5
    nb = sum(y * y for y in b) ** 0.5
    return dot / (na * nb) if na and nb else 0.0
