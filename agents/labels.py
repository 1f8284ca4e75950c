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
from agents.given import GIVEN_MAP, MAP_FILE, OTHER_INPUT, OWN_MAP, given_foreign, made_picture, two_pictures
from agents.label_rules import COMPILED, INTENT_COMPILED
from agents.masks import MASK_FOREIGN, SUBJECT_MASK, USER_MASK, mask_given
from agents.orientation import explicit_ratio, find_shape, normalize, strip_shapes
from agents.outpaint import asks_outpaint
from agents.paths import without_paths
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


# the input phrases taken out before styles and subjects are matched: only the generic picture
# nouns ("this photo"), so "this van gogh painting" or "my portrait" still say a style or subject
_INPUT_PHRASE = re.compile(
    r"\b(?:this|these|my|our|the (?:input|given|attached|uploaded|provided)|attached) (?:[a-z]+ ){0,2}"
    r"(?:photos?|images?|pictures?|pics?|scans?|screenshots?|fotos?|snapshots?|photographs?)\b|"
    r"input image|img2img|\(?(?:image|photo|mask) attached\)?|"
    r"restyle|re-?draw|(?:turn|make) (?:this|my)(?: (?:photo|image|picture|drawing|sketch))?\b|"
    r"based on the (?:image|photo)", re.IGNORECASE)

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
# an upscale factor put to a pointing word ("2x this pls"), or the size the given picture has now ("its
# only 400px wide", "it's just 512 px"): the picture is the user's
_FACTOR_OF_GIVEN = re.compile(
    r"(?:^|[\s(])(?:x ?[2-8]|[2-8](?:\.5)? ?x|[2-8] times)\s+(?:this|that|these|it|them|em|dis)\b|"
    r"\b(?:it'?s|it is|this is|this one'?s|this one is|the (?:pic|photo|image|file) is|currently|"
    r"right now)\s+(?:(?:only|just|like|tiny|small|little|so small)\s*)*\(?\d{2,4} ?(?:px|pixels?)\b"
    r"(?:\s+(?:wide|tall|high|across))?", re.IGNORECASE)
# "i need it ~2048 wide": a size for the picture the user has
_SIZE_TO_REACH = re.compile(r"\b(?:need|want|make)\s+(?:it|this|them)\s+(?:to be\s+)?"
                            r"(?:~\s*|about |around |at )?\d{3,5}\b", re.IGNORECASE)
_UPSCALE_GIVEN = re.compile(
    r"\b(?:enhance|increase|improve|boost|raise|up)\s+(?:the\s+)?(?:resolution|res)\b|"
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


# the area a mask marks, for a new subject ("put a puppy only inside that area")
_INSIDE_AREA = re.compile(r"\b(?:only |just |exactly )?(?:inside|within|in|into) (?:that|this|the|its|my) "
                          r"(?:(?:white|masked|marked|painted) )?"
                          r"(?:area|region|part|zone|spot|shape|blob|space|circle|square|oval|"
                          r"rectangle|box)\b|\b(?:inside|within) it\b",
                          re.IGNORECASE)


# a mask named as a known one, the user's: "the mask", "het masker", "die Maske", "la máscara" (not "einer
# venezianischen Maske", a mask in the picture)
_THE_MASK = re.compile(r"\b(?:the|my|our|het|de|mijn|die|der|meine[rn]?|la|le|el|il|mi|ma|mon|a minha|"
                       r"den|min)\s+(?:" + MASK_FOREIGN.pattern + r"|mask)\b|"
                       r"\bmasked (?:area|region|part|spot|zone|corner|section)\b|"
                       r"\bmaskiert\w*|\bgemaskeerd\w*", re.IGNORECASE)
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
                           r"(?:put|pit|bring) (?:the |some )?colou?rs? back|"
                           r"take (?:it|them|that|those|him|her) (?:away|out))\b", re.IGNORECASE)
# a background changed (a region of the given picture repainted): "swap out the background", Hinglish
# "uska background badal ke"
_NEW_BACKGROUND = re.compile(r"\b(?:change|replace|swap|switch)\s+(?:out\s+)?(?:the|its|his|her|their)\s+"
                             r"background|\bbackground\s+(?:ko\s+)?badal|"
                             # zh, ja, ko: "背景换成纯白", "背景を白に変えて", "배경을 흰색으로 바꿔"
                             r"背景(?:换成|改成|替换|变成|換成|改為|變成)|(?:换|換)(?:个|個)?背景|"
                             r"背景を.{0,8}?(?:に変え|変更|差し替え)|배경\S{0,2}\s?.{0,10}?(?:바꿔|변경|교체)",
                             re.IGNORECASE)
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
                          # "4k print ... for a 60x40 cm canvas", "8k print ... poster size"
                          r"\bprint\b[^.;!?]{0,120}?\b(?:poster size|"
                          r"for an? (?:\d+ ?x ?\d+ ?cm |large |big )?(?:canvas|wall))\b|"
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
        content = COMPILED[label].sub(" ", content)
    unquoted = _QUOTED.sub(" ", prompt)  # a title or words to render ("the 'Mask & Milonga' festival")
    found = {label for label, rx in COMPILED.items()
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
    labels.intents = [i for i in INTENTS if INTENT_COMPILED[i].search(unquoted)]
    _lexicon_intents(unquoted, labels)
    given_map = GIVEN_MAP.search(prompt) or OWN_MAP.search(prompt) or MAP_FILE.search(prompt) \
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
        if not COMPILED["image-to-image"].search(rest):
            found.discard("image-to-image")
    elif ("control" in labels.intents or ("pose" in labels.intents and not _POSE_FROM.search(prompt))) \
            and _given_picture(prompt):
        # "keep the composition of my photo", "turn my photo into a statue, keep the pose": the photo is
        # redrawn, its outlines keep the pose and the layout (a pose taken from a picture for a new
        # subject, "a knight in the same pose as the person in this photo", stays a pose to follow)
        labels.intents = [i for i in labels.intents if i not in ("control", "pose")]
        _add(labels.intents, "edges")
    if given_foreign(prompt) or lexicon.gives_picture(prompt, OTHER_INPUT):
        found.add("image-to-image")
        if MASK_FOREIGN.search(prompt) or lexicon.words_of("mask").search(prompt):
            found.add("inpaint")
    upscaled = _UPSCALE_VERB.search(prompt) or _UPSCALE_GIVEN.search(prompt) \
        or lexicon.words_of("upscale").search(prompt) or re.match(r"\W*(?:x ?\d|\d(?:\.5)? ?x)\b", prompt) \
        or _SIZE_TO_REACH.search(prompt)
    if "image-to-image" not in found and not given_map \
            and ((_FACTOR_OF_GIVEN.search(prompt) and upscaled) or lexicon.pointed_before(prompt, "upscale")):
        found.add("image-to-image")  # "2x this pls its only 400px wide", kk "this texture 4x bigger"
        _add(labels.intents, "upscale")
    if "image-to-image" not in found and not given_map and _edits_given(prompt):
        found.add("image-to-image")  # "voisitsä poistaa ton tyypin tosta taustalta": a given picture's
    if "image-to-image" not in found and "mask-region" not in labels.intents and mask_given(prompt):
        if (_INSIDE_AREA.search(prompt) or _REST_IS.search(prompt) or _NEW_PICTURE.search(prompt)) \
                and not _REPAINT.search(prompt):
            labels.intents.append("mask-region")  # "I drew a mask - put a puppy only inside that area"
        else:  # "masku přikládám, doplň tam kus oblohy": a mask is of a picture to repaint
            found.add("inpaint")
    if "detail" in labels.intents and "image-to-image" in found \
            and not (_MASK_WORD.search(prompt) or MASK_FOREIGN.search(prompt)):
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
    given = "image-to-image" in found or given_foreign(prompt)
    made = given or made_picture(unmapped)  # "concept art attached is only 512px": given too
    second = lexicon.second_picture_role(prompt, OTHER_INPUT) if given else None
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
    if "inpaint" in found and SUBJECT_MASK.search(prompt) and not USER_MASK.search(prompt) \
            and "image-to-image" not in found and not INTENT_COMPILED["mask-region"].search(prompt) \
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
    if made_picture(unmapped):
        found.add("image-to-image")  # "the picture I made yesterday (attached)"
    if "upscale" in labels.intents and lexicon.has_word(prompt, "extend") \
            and (any(lexicon.has_word(prompt, side) for side in ("left", "right", "top", "bottom"))
                 or explicit_ratio(prompt) is not None):
        # "amplia la imatge cap a la dreta, que quedi 16:9": a word of both enlarging and extending, with a
        # side or a new shape, extends the picture (an upscale keeps its shape)
        labels.intents.remove("upscale")
    if (asks_outpaint(prompt) and _given_picture(prompt)) or _STRONG_OUTPAINT.search(prompt) \
            or (lexicon.has_word(prompt, "extend") and "upscale" not in labels.intents
                and ("image-to-image" in found or lexicon.gives_picture(prompt, OTHER_INPUT))):
        # "extend this photo to 16:9", "uncrop": an inpainting of the padded border (agents.outpaint)
        labels.intents = [i for i in labels.intents if i not in ("upscale", "regions", "hires")]
        _add(labels.intents, "outpaint")
        found.add("inpaint")
    if ("image-to-image" in found or "inpaint" in found) and "outpaint" not in labels.intents \
            and two_pictures(prompt) \
            and not set(labels.intents) & {"style", "palette", "reference", "upscale", "detail", "depth",
                                           "edges", "control", "pose"}:
        _add(labels.intents, "reference")  # the second picture: what to put there, or (below) its style
    if "reference" in labels.intents and "inpaint" not in found and not SUBJECT_MASK.search(prompt) \
            and _THE_MASK.search(prompt):
        found.update(("image-to-image", "inpaint"))  # "van de referentiefoto ... op de plek van het masker"
    if "reference" in labels.intents and "inpaint" not in found and "image-to-image" in found \
            and "palette" not in labels.intents:
        _add(labels.intents, "style")  # "painted like this reference painting": its style
    if "palette" in labels.intents and not _PALETTE_NOUN.search(prompt):
        _not_a_palette(prompt, labels)
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
_ATTACHED_NOTE = re.compile(r"\((?:see )?attached[^)]{0,20}\)", re.IGNORECASE)
_QUOTED = re.compile(r"(?<!\w)'[^'\n]{1,60}'(?!\w)|\"[^\"\n]{1,60}\"|"
                     r"[\u201c\u00ab\u300c][^\n]{1,60}?[\u201d\u00bb\u300d]")
# the technical names of a control map, which users keep in English in any language
_CONTROL_WORD = re.compile(r"\b(?:canny|openpose|line ?art|depth ?map|normal ?map|scribble|controlnet|"
                           r"pose skeleton|lijntekening\w*|strichzeichnung\w*|linienzeichnung\w*|djupkart\w*|"
                           r"dybdekort\w*)\b|"
                           r"лайнарт\w*|ラインアート|线稿|라인아트", re.IGNORECASE)


# a palette named as one ("colour palette", "paleta", "the colours of the sunset photo"), not only a swatch
# or the word for colours
_PALETTE_NOUN = re.compile(r"palet|палит|паліт|παλέτ|パレット|调色|調色|配色|팔레트|"
                           r"\bcolou?r (?:chart|card|scheme)s?\b|\bcolou?rs? (?:of|from)\b|\brecolou?r|"
                           r"\bcolou?ri[sz]", re.IGNORECASE)
# what a swatch shows beside its colours: a fabric or pattern to put in, a thing to place
_MATERIAL_FROM = re.compile(r"\b(?:fabric|pattern|texture|material|print|cloth|weave)\b[^.;!?]{0,30}?"
                            r"\b(?:from|of|in|on) (?:the |my |this )?(?:[\w-]+ )?swatch", re.IGNORECASE)


def _not_a_palette(prompt: str, labels: Labels) -> None:
    """A second picture read as a palette (a swatch, the word for colours) that the words give another
    role: its style ("im style vom zweiten bild, farben und alles"), an upscale of it ("a low res swatch
    scan, need it 4 times larger") or the fabric to put in ("the exact fabric from the swatch pic")."""
    if _MATERIAL_FROM.search(prompt):
        labels.intents[labels.intents.index("palette")] = "reference"
    elif INTENT_COMPILED["style"].search(prompt) or lexicon.has_word(prompt, "style"):
        labels.intents.remove("palette")
        _add(labels.intents, "style")
    elif _UPSCALE_VERB.search(prompt) or lexicon.words_of("upscale").search(prompt) \
            or re.search(r"\b(?:\d|two|three|four) times (?:larger|bigger)\b", prompt, re.IGNORECASE):
        labels.intents.remove("palette")
        _add(labels.intents, "upscale")


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


def _given_picture(prompt: str) -> bool:
    return bool(COMPILED["image-to-image"].search(prompt) or given_foreign(prompt)
                or made_picture(prompt) or lexicon.gives_picture(prompt, OTHER_INPUT))


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
