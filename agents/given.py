"""What the words say the user gives: a picture, two pictures, a control map.

"this photo", "the render I attached", "dieses Bild", "the second file" point at a picture the user
gives; "my depth map", "attached is my lineart" at a control map. A prompt that says none of them
describes a new picture.
"""

from __future__ import annotations

import re

from agents import lexicon
from agents.label_rules import COMPILED, PICTURE
from agents.masks import MASK_FOREIGN

# a given map ("following this edge map") is a control input, not an image to derive one from
_MAP = (r"(?:canny|edges?|depth|pose|openpose|normal|segmentation|seg|semantic|scribble|line ?art|mlsd|hed|"
        r"soft ?edge|outline)(?:[- ](?:edge|edges|detection))?[- ]"
        r"(?:map|image|pass|render|mask|drawing|skeleton|stick ?figure|file|png|control(?: image)?)s?")


GIVEN_MAP = re.compile(
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


OWN_MAP = re.compile(
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
MAP_FILE = re.compile(r"(?<![/\\.\w-])[\w-]*(?:depth|canny|edges?|pose|lineart|scribble|normals?|seg)"
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
    # "2 files: my shop-front photo and a painting i like"
    r"(?:^|[.;!?]\s*)(?:2|two) (?:files|pics|pictures|photos|images|attachments)\s*[:\-(]|"
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
_ART_PICTURE = (r"(?:" + PICTURE + r"|watercolou?rs?|prints?|posters?|woodcuts?|collages?|comics?|etchings?|"
                r"mockups?|covers?)")


# a second picture sent in the same breath as the first: "here's my photo of the courtyard model + a hokusai
# print", "attached: my sketch and a poster i like"
_AND_ANOTHER = re.compile(
    r"\b(?:here(?:'s| is| are)|attached(?: is| are)?:?|i(?:'m| am) (?:sending|attaching|uploading)|"
    r"(?:i|we)(?:'ve)? (?:sent|attached|uploaded)|(?:^|\b(?:i|we)(?:'ve|ve| have)?\s)got|(?:i|we) have)\s+"
    r"(?:(?:my|our|a|an|the|this)\s+)?(?:[\w'-]+\s+){0,5}?"
    + PICTURE + r"\b[^.;!?]{0,60}?(?:\+|&|\band\b|\bplus\b|\balong with\b)\s*(?:a|an|the|my|our|this)\s+"
    r"(?:[\w'-]+\s+){0,2}?" + _ART_PICTURE + r"\b", re.IGNORECASE)


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
MADE_PICTURE = re.compile(
    r"\bthe (?:[a-z]+ ){0,2}" + PICTURE + r" (?:that )?(?:i|we) (?:made|drew|painted|created|did|took)\b|"
    r"\((?:see )?attached\)|"
    r"\b(?:attached|enclosed),? you(?:'ll| will) find\b|\b(?:please )?find (?:attached|enclosed)\b|"
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
    + PICTURE + r" from\b|"
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


_MASK_IS = re.compile(r"\bmask\b[^.;!?]{0,28}?(?:\bis|=|:|-)\s*(?:the|in the|on the|in|on)?\s*$|"
                      # "a mask of the sky (2nd file)"
                      r"\bmask\b(?: (?:of|for) (?:the |my |his |her )?[\w-]+)?\s*\(\s*(?:the\s+)?$|"
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
             or _MASK_IS.search(prompt[max(0, m.start() - 40):m.start()]  # "mask is the 2nd file"
                                + ("(" if m.group(0).startswith("(") else ""))]  # "a mask (2nd file)"
    ordinals = [m for m in found if m not in masks]
    unmasked = prompt  # the mask's place is no second picture for the lexicon either
    for m in reversed(masks):
        unmasked = unmasked[:m.start()] + " mask " + unmasked[m.end():]
    if ordinals or _TWO_FOREIGN.search(prompt) or _AND_ANOTHER.search(prompt) \
            or lexicon.pictures(unmasked, OTHER_INPUT) >= 2:
        return True
    given = list(_GIVEN_NOUN.finditer(prompt))
    nouns = {_stem(next(g for g in m.groups() if g)) for m in given}
    if nouns:  # and the picture an edit names ("make the photo of my layout look like the cover I attached")
        edited = COMPILED["image-to-image"].search(prompt)
        found = re.search(r"\b(" + PICTURE + r")\b", edited.group(0), re.IGNORECASE) if edited else None
        # one noun phrase is one picture: "here's our box cover render" (cover, render)
        if found and not any(m.start() <= edited.start() + found.start() <= m.end() + 12 for m in given):
            nouns.add(_stem(found.group(1)))
    return len(nouns) >= 2


def given_foreign(prompt: str) -> bool:
    """Whether a given-picture phrase of another language stands in ``prompt`` with no negation in the
    three words before it ("helst inga människor på bilden": no people in the picture, a new one)."""
    for m in _GIVEN_FOREIGN.finditer(prompt):
        before = re.findall(r"[^\W\d_]+", prompt[:m.start()].lower())[-3:]
        if not lexicon.NEGATIONS.intersection(before):
            return True
    return False


# the words of an input that is not a picture (a mask, a pose skeleton, a map): a verb of giving
# beside one gives that input ("pakai mask yang aku kirim", "Přikládám pózu (OpenPose kostru)")
OTHER_INPUT = re.compile(MASK_FOREIGN.pattern + r"|\bmask\w*|\bmarked\b|openpose|\bpose\w*|\bp[óo]z\w*|"
                         r"\bkostr\w*|\bskelet\w*|\bszkielet\w*|\bmaps?\b|\bmapa\b|karte\b|\bcanny\b|"
                         r"\bdepth\b|\bedges?\b|\bline ?art\b|\bscribble\w*|поз[уае]\b|скелет\w*|карт[уа]\b|"  # noqa: RUF001
                         r"ポーズ|骨架|姿势|深度|线稿|포즈|스켈레톤|σκελετ\w*|πόζα", re.IGNORECASE)


# "mask is a circle in the middle (attached)": the note names the mask (or map) said before it
_NOTE_OF_OTHER = re.compile(r"\((?:see )?attached\)")


def made_picture(prompt: str) -> bool:
    """Whether ``prompt`` tells of a picture by what the user did with it (:data:`MADE_PICTURE`); an
    "(attached)" note after a mask or a map in the same sentence gives that input, not a picture."""
    for m in MADE_PICTURE.finditer(prompt):
        sentence = re.split(r"[.;!?]\s", prompt[:m.start()])[-1]
        if _NOTE_OF_OTHER.fullmatch(m.group(0)) and OTHER_INPUT.search(sentence):
            continue
        return True
    return False

