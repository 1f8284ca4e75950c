"""The shape a prompt asks for, in any phrasing: orientation words, named formats, ratios.

Orientation is read only where it names the picture's format, never from an adjective
of the subject: "vertical poster", "portrait orientation", "Hochformat", "format paysage",
"縦長", "竖版", "phone wallpaper", "for an Instagram story" set a shape; "a vertical
garden", "a tall giraffe", "a wide river", "a landscape painting" do not. Ratios are read
as "9:16", "2.35:1", "16x9", "3 by 2", "aspect ratio 4 to 5", and poster or print sizes in
inches or centimetres ("24x36 poster", "50 x 70 cm").

>>> round(find_shape("vertical headshot of a young woman").aspect, 4)
0.6667
>>> find_shape("Ein Porträt einer Bäuerin, Hochformat").format
'tall'
>>> find_shape("a vertical garden on a wall") is None
True
>>> explicit_ratio("cinematic still, 2.35:1")[0]
2.35
>>> round(explicit_ratio("a 24x36 inch poster of a lighthouse")[0], 4)
0.6667
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

ORIENTED = 1.5  # landscape orientation 3:2; portrait 2:3
PHONE = 9 / 16  # a phone screen, a story or reel
SCREEN = 16 / 9  # widescreen, a desktop wallpaper, a video thumbnail
EQUIRECT = 2.0  # a 360 panorama (equirectangular: 360 by 180 degrees)
TALL_WORD = 0.5  # "a tall image"
TALL_BANNER = 1 / 3  # a vertical banner, a roll-up
CINEMA = 2.39  # cinemascope, anamorphic
HEADER = 3.0  # a social-media or website header, a wide banner
SPREAD = 2.0  # a book's two-page spread: two portrait pages side by side

# nouns that name the picture's format (after or before an orientation word), in several languages
_FORMAT_NOUNS = (
    r"formats?|formato|formaat|orientations?|orientaci[oó]n|orientamento|orienta[cç][aã]o|orientierung|"
    r"ausrichtung|modes?|modo|images?|imagen|immagine|imagem|bild|photos?|fotos?|foto|pictures?|pics?|"
    r"shots?|headshots?|portraits?|selfies?|photographs?|posters?|p[oó]ster|affiche|plakat|cartel|cartaz|"
    r"manifesto|locandina|wallpapers?|backgrounds?|fond d'[ée]cran|fondo|sfondo|banners?|banni[eè]re|"
    r"prints?|flyers?|covers?|cards?|videos?|compositions?|composici[oó]n|composizione|crops?|frames?|"
    r"layouts?|versions?|aspect|canvas|lienzo|illustrations?|artworks?|renders?|stills?|designs?|ads?|"
    r"adverts?|pages?|sheets?|paintings?|drawings?|shape|ratio|view|screen|display|thumbnail|"
    r"формат\w*|изображени\w*|постер\w*|плакат\w*|обо\w*|ориентаци\w*|фото\w*|"  # noqa: RUF001
    r"εικόν\w*|σελίδ\w*|αφίσ\w*|φωτογραφί\w*|μορφ\w*|προσανατολισμ\w*|"
    r"(?:ال)?صور\w*|(?:ال)?ملصق\w*|(?:ال)?خلفي\w*|(?:ال)?بوستر|(?:ال)?تنسيق|(?:ال)?اتجاه|(?:ال)?لوح\w*|"
    r"gambar|orientasi|poster|h[ìi]nh|[ảa]nh|b[ứu]c [ảa]nh"
)
_VERTICAL = (r"vertical(?:es|e|s)?|verticali|vertikal(?:e[nmrs]?)?|pionow\w*|вертикальн\w*|upright|"
             r"κάθετ\w*|κατακόρυφ\w*|(?:بشكل |ب)?(?:ال)?عمودي\w*")
_HORIZONTAL = (r"horizontal(?:es|e|s)?|orizzontal[ei]|waagerecht\w*|poziom\w*|горизонтальн\w*|"
               r"οριζόντι\w*|(?:بشكل |ب)?(?:ال)?أفقي\w*|(?:بشكل |ب)?(?:ال)?افقي\w*")


def _oriented(word: str) -> str:
    """An orientation word that names the format: before a format noun (a word or two on),
    after one ("format vertical", "affiche verticale"), or closing a clause (", vertical")."""
    return (rf"\b(?:{word})(?:ly)?\s+(?:[\w:'-]+\s+){{0,2}}?(?:{_FORMAT_NOUNS})\b|"
            rf"\b(?:{_FORMAT_NOUNS})\s+(?:\w+\s+)?(?:{word})\b|"
            rf"(?:^|[,;(:\u060c]|\b(?:in|en|im|na|w|и|it|this|σε)\s)\s*(?:{word})(?:ly)?\s*(?=$|[,;.)!\u060c])|"
            rf"\b(?:{word})(?:ly)?[- ]orient(?:ed|ated)\b")


@dataclass(frozen=True)
class Shape:
    """A shape the prompt asks for: ``wide`` or ``tall``, its default aspect (width / height)
    and the phrase that said so."""

    format: str
    aspect: float
    phrase: str
    kind: str  # "phone", "banner", "header", "cinema", "screen", "word" (tall image), "oriented"


# (kind, format, aspect, pattern): the first kind in this order wins when two are found
# an orientation word closing a list of tags ("..., daylight, landscape"): the shape, and a scene or a
# person is drawn so anyway
_CLOSING = r"(?:[,;]|\s-)\s*{}\s*[.!]?\s*$"
# a bare orientation word asked for politely, not after an article ("Landscape please.", "landscape sana
# po", "..., portrait pls"): "a portrait, please" is of a person
_ASKED = (r"(?<!\ba )(?<!\ban )(?<!\bthe )\b{}[,!]?\s+(?:please|pls|plz|sana|po|bitte|por favor|svp|"
          r"s'il vous plaît|thanks|thx|if possible|would be (?:great|nice|ideal)|"
          # chat particles: "vertical nomas", "horizontal porfa", "landscape unta", "portrait naman"
          r"porfa|porfis|nomas|nomás|no más|naman|unta|lang|dong|aja|lah|plis|pliss|plss|yaar|bhai|stp|"
          r"gracias|danke|merci|obrigad[oa])(?!\w)")
# an orientation tag right after a format's tag ("fireworks thumbnail, landscape, crowd at the bottom")
_TAGGED = (r"\b(?:thumbnail|poster|flyer|wallpaper|cover|card|banner|print|postcard|invitation)s?\s*,\s*{}\s*"
           r"(?=$|[,;.!])")
_SHAPES: list[tuple[str, str, float, str]] = [
    # a 360 (equirectangular) panorama is 2:1, whatever other shape word comes with it
    ("360", "wide", EQUIRECT,
     r"\b360\s*(?:°|º|degrees?|[- ]degree)?(?:\s*(?:x|by)\s*180)?\s*"
     r"(?:view|panorama|pano|photo|image|picture|shot|sphere|vr|environment|render|scene|skybox|background)s?\b|"
     r"\b360°|\ball the way (?:a)?round\b|\bpanor\w* 360\b|"
     # "360 gráðu víðmynd", "360 Grad Panorama", "360 derece": a degree word of any language
     r"\b360\s*(?:gráð\w*|grad\w*|grados|graus|degr[ée]s?|stopni\w*|stup\w*|derece|derajat|độ|fok|"
     r"μοίρες|μοιρών|градус\w*|gradi)\b|"
     r"\bequirectangular\b|\bspherical (?:panorama|image|photo)\b|\bfull[- ](?:circle|sphere) panorama\b|"
     r"全天球|360度|360도|360\s*全景"),
    ("phone", "tall", PHONE,
     r"\b(?:(?:mobile|cell|smart)?\s*phone|mobile|iphone|android|smartphone|handy|cellphone)[- ]?"
     r"(?:wallpapers?|backgrounds?|lock ?screens?|screens?|hintergrund|screensavers?)\b|\block ?screens?\b|"
     r"\b(?:instagram|insta|ig|facebook|fb|snapchat|whatsapp)\s+stor(?:y|ies)\b|"
     r"\b(?:wallpaper|background|lock ?screen)s? (?:for|on) (?:my |the |a |your )?"
     r"(?:phone|mobile|iphone|android|cell|smartphone)\b|"
     r"\bstor(?:y|ies)\s+(?:\w{1,3}\s+)?(?:instagram|insta|ig|facebook|fb|snapchat|whatsapp)\b|"
     r"\b(?:formato\s+)?(?:historias?|hist[óo]rias?|stories)\s+(?:de|do|da|del)\s+(?:insta|instagram|ig)\b|"
     r"\bformato\s+(?:historia|hist[óo]ria|story|stories)\b|"
     r"\b(?:stor(?:y|ies)|reels?|tiktoks?|shorts)\s+(?:format|size|cover|video|post|image|frame|ratio|"
     r"dimensions?)\b|\bfor (?:a |an |my |the )?(?:tiktok|reel|reels|instagram reel|story|stories|"
     r"youtube shorts?|yt shorts?)\b|\b(?:yt|youtube) shorts?\b|\b(?:vertical|portrait) videos?\b|"
     r"手机壁纸|手機桌布|手机屏保|手机背景|竖屏|豎屏|スマホ(?:の)?壁紙|待ち受け|縦画面|"
     r"fond d'[ée]cran (?:de |pour )?(?:t[ée]l[ée]phone|mobile|smartphone|portable)|"
     r"fondo de pantalla (?:del |de |para )?(?:m[oó]vil|celular|tel[ée]fono)|"
     r"sfondo (?:per (?:il )?)?(?:telefono|cellulare|smartphone)|"
     r"papel de parede (?:de |para )?(?:celular|telem[oó]vel)|handy-?(?:hintergrund|wallpaper)|"
     r"\b(?:wallpaper|latar(?: belakang)?)\s+(?:hp|ponsel|handphone|hape|android|iphone)\b|"
     r"h[ìi]nh n[ềe]n (?:đi[ệe]n tho[ạa]i|đt)|(?:폰|휴대폰|핸드폰|스마트폰)\s*배경(?:화면)?|"
     r"\btelefon (?:duvar ka[ğg][ıi]d\w*|arka plan\w*)|(?<!\w)обо\w* (?:на|для) (?:телефон|смартфон)\w*|"  # noqa: RUF001
     r"\btapet\w* (?:na|do) (?:telefon|smartfon|komórk)\w*|\b(?:bakgrund|tapet) (?:till|"
     r"för) (?:mobil|telefon)\w*|"
     r"\btapet\w* (?:na|do) mobil\w*|ταπετσαρία\s+(?:για\s+)?κινητού|"  # noqa: RUF001
     r"خلفي\w* (?:لل|ل)?(?:هاتف|جوال|موبايل)\w*"),
    ("banner", "tall", TALL_BANNER,
     r"\b(?:vertical|tall|upright|portrait)(?:,?\s+(?:and\s+)?(?:skinny|narrow|thin|slim))?\s+"
     r"(?:roll-?up\s+)?banners?\b|\b(?:roll|pull|pop)[- ]?up (?:banners?|stands?|displays?)\b|\bstandees?\b|"
     r"\bbanners?\s+(?:in\s+)?(?:vertical|portrait)\b|"
     # a hanging scroll (kakejiku, a Chinese 立轴) is a tall strip
     r"\bhanging scrolls?\b|\bkakejiku\b|\bkakemono\b|掛け?軸|挂轴|立轴|족자"),
    ("spread", "wide", SPREAD,
     r"\b(?:two|2|double)[- ]page(?:d)?\s+(?:spread|layout)s?\b|\bdouble[- ]spreads?\b|\bpage[- ]spreads?\b|"
     r"\b(?:book|magazine|album)\s+spreads?\b|\bspread (?:across|over) two pages\b|"
     r"\btwo (?:[\w-]+ )?pages (?:placed )?side[- ]by[- ]side\b|"
     r"\bdoppelseite\w*|\bdouble page\b|\bdoble p[áa]gina\b|\brozk[łl]ad\w* (?:na )?dwie strony\b|"
     r"\bразворот\w*|양면\s*펼침|見開き|跨页|跨頁"),  # noqa: RUF001
    ("header", "wide", HEADER,
     r"\bwide\s+banners?\b|\bbanners?\s+(?:lebar|l[ớo]n ngang|ngang)\b|(?:ال)?بانر\s+(?:ال)?عريض\w*|"
     r"(?:ال)?لافتة\s+(?:ال)?عريض\w*|가로\s*배너|와이드\s*배너|横幅|横断幕|"
     r"\bhand ?scrolls?\b|\bemaki(?:mono)?\b|絵巻|手卷|"
     r"\bbanni[eè]re large\b|\bbanner (?:ancho|largo|larga)\b|\bbreite[sn]? banner\b|"
     r"\bшироки\w* баннер\w*|"  # noqa: RUF001

     r"\b(?:twitter|x|linkedin|facebook|fb|youtube|website|web|blog|email|newsletter|page|site)\s+"
     r"(?:header|banner|cover)(?: image| photo| picture)?s?\b|\bchannel art\b|"
     # "tipo portada pa mi facebook", "couverture facebook", "capa do facebook"
     r"\b(?:portada|couverture|capa|copertina|titelbild)\s+(?:\w+\s+){0,2}?(?:facebook|fb|twitter|linkedin)\b"),
    ("cinema", "wide", CINEMA, r"\b(?:cinemascope|anamorphic(?: widescreen| format)?|scope format)\b"),
    ("screen", "wide", SCREEN,
     r"\bwide[- ]?screen\b|\bdesktop (?:wallpaper|background|screen)s?\b|"
     r"\b(?:4|8) ?k (?:desktop )?(?:wallpaper|background)s?\b|"
     r"\b(?:desktop )?wallpapers? (?:in|at) (?:4|8) ?k\b|"
     r"\b(?:1080p|1440p|2160p|full ?hd|fhd|uhd|qhd) (?:desktop )?(?:wallpaper|background|screen|frame)s?\b|"
     r"\b(?:youtube|yt|you tube)[- ]?thumb(?:nail)?s?\b|\bthumb(?:nail)?s?\s+(?:for|on)\s+(?:youtube|yt)\b|"
     r"\b(?:tv|television|monitor) (?:format|screen|aspect)\b|\bbreitbild\w*|"
     r"\b(?:pantalla ancha|[ée]cran large|schermo largo|tela larga)\b|\bbreedbeeld\w*|"
     r"\bpanoramisch formaat\b|"
     r"宽屏|寬屏|横屏|橫屏|横画面|ワイド(?:画面|スクリーン)?|와이드(?:\s*(?:화면|스크린))?"),
    ("word", "tall", TALL_WORD,
     r"\btall(?:,?\s+(?:and\s+)?(?:narrow|thin|slim|skinny))?\s+(?:image|format|poster|picture|frame|aspect|"
     r"composition|crop|orientation|canvas|print|shape)\b|"
     r"\balt[oa] (?:e|y) (?:strett?[oa]|estrech[oa]|angost[oa]|estreit[oa])\b|\bhaute? et [ée]troite?\b|"
     r"\bhoch und schmal\b|\bhoog en smal\b|"
     # "made tall and narrow like a scroll": a strip
     r"\b(?:make|made|making|keep|render|do)\s+(?:(?:it|this|that|the (?:image|picture|pic|poster|print|"
     r"format|canvas|frame|artwork|art|wallpaper))\s+)?(?:extra\s+|really\s+|very\s+)?tall,?\s+(?:and\s+)?"
     r"(?:narrow|thin|slim|skinny)\b"),
    ("oriented", "tall", 1 / ORIENTED,
     _oriented(_VERTICAL) + r"|"
     r"\bmake (?:it|am|this|the (?:image|picture|pic|poster|photo)) (?:in )?portrait\b(?! of\b)|"
     r"\b(?:needs?|has to be|must be|should be|wants?) (?:to be )?(?:in )?portrait"
     r"(?: format| orientation| mode)?"
     r"(?=\s*(?:$|[,;.!?]|and\b|but\b|so\b))|"
     # "make it tall like a real poster", "keep the poster tall": said of the picture, a portrait shape
     r"\b(?:make|made|making|keep|render|do)\s+(?:(?:it|this|that|the (?:image|picture|pic|poster|print|"
     r"format|canvas|frame|artwork|art|wallpaper))\s+)?(?:extra\s+|really\s+|very\s+|nice\s+and\s+)?tall"
     r"(?=\s*(?:$|[,;.!)]|and\b|like\b|as\b|for\b|so\b|pls\b|please\b))|"
     r"\bportrait[- ](?:orient(?:ed|ation)|format|mode|aspect(?: ratio)?|layout|crop|ratio|shape|size)\b|"
     # "..., portrait poster, retro look": a tag of the format (not "a portrait poster of my dad")
     r"(?:^|[,;]\s*)portrait (?:posters?|flyers?|prints?|covers?|cards?|wallpapers?)\s*(?=$|[,;.)])|"
     r"\b(?:in|it|as|to) portrait\s*(?=$|[,;.)])|\bportr[äa]tformat\w*|\bhochformat\w*|\bhochkant\b|"
     r"\bstaand formaat\b|\bst[åa]ende (?:format|bild|läge)\b|\bna v[ýy][šs]ku\b|"
     r"\bdikey (?:format\w*|g[öo]rsel\w*|poster\w*)|\bportre format\w*|\bkh[ổo] d[ọo]c\b|"
     r"κάθετ\w* (?:μορφ\w*|προσανατολισμ\w*)|"
     r"\b(?:format|formato|formaat|mode|modo|orientation|orientaci[oó]n|orientamento|orienta[cç][aã]o)"
     r"\s+(?:de\s+|di\s+)?(?:portrait|retrato|ritratto|portr[äa]t|potret)\b|"
     + _ASKED.format("portrait") + r"|" + _CLOSING.format("portrait") + r"|" + _ASKED.format("vertical")
     + r"|" + _TAGGED.format("portrait")
     + r"|"
     r"\b(?:mode|orientasi|"
     r"format) potret\b|"
     r"\bпортретн\w*\s+(?:ориентац|формат)\w*|"  # noqa: RUF001
     r"縦長|縦向き|縦構図|縦位置|縦型|竖版|竖图|竖幅|竖构图|竖向|纵向构图|纵向|直幅|豎版|豎圖|豎幅|"
     r"세로(?:형|로|\s*방향|\s*포스터|\s*이미지|\s*사진|\s*화면|\s*구도|\s*(?=\d{1,2}\s*[:x]\s*\d))"),
    ("oriented", "wide", ORIENTED,
     _oriented(_HORIZONTAL) + r"|"
     r"\bmake (?:it|am|this|the (?:image|picture|pic|poster|photo)) (?:in )?landscape\b(?! of\b)|"
     r"\b(?:needs?|has to be|must be|should be|wants?) (?:to be )?(?:in )?landscape"
     r"(?: format| orientation| mode)?"
     r"(?=\s*(?:$|[,;.!?]|and\b|but\b|so\b))|"
     r"\bmake (?:it|am|e) (?:be )?wide\b(?: o\b)?(?=\s*(?:$|[,;.!]))|"
     r"\blandscape[- ](?:orient(?:ed|ation)|format|mode|aspect(?: ratio)?|layout|ratio|shape|size)\b|"
     r"\blandscape (?:[\w:-]+ ){0,2}?(?:poster|print|wallpaper|flyer|card|banner)\b|"
     r"\b(?:in|it|as|to) landscape\s*(?=$|[,;.)])|\bquerformat\w*|" + _ASKED.format("landscape")
     + r"|" + _CLOSING.format("landscape") + r"|" + _ASKED.format("horizontal")
     + r"|" + _TAGGED.format("landscape")
     + r"|\blandschaftsformat\w*|\bliggend formaat\b|"
     r"\bapaisad[oa]s?\b|\bliggande (?:format|bild|läge)\b|\bna [šs][íi][řr]ku\b|"
     r"\byatay (?:format\w*|g[öo]rsel\w*|poster\w*)|\bmanzara format\w*|\bkh[ổo] ngang\b|"
     r"οριζόντι\w* (?:μορφ\w*|προσανατολισμ\w*)|"
     r"\b(?:format|formato|formaat|mode|modo|orientation|orientaci[oó]n|orientamento|orienta[cç][aã]o)"
     r"\s+(?:de\s+|di\s+)?(?:paysage|paisaje|paisagem|paesaggio|landscape|lanskap)\b|\blanskap\s*(?=$|[,;.)])|"
     r"\bальбомн\w*\s+(?:ориентац|формат)\w*|"  # noqa: RUF001
     r"横長|横構図|横位置|横型|横向き(?:の)?(?:画像|写真|ポスター|壁紙|バナー|構図|イラスト)|横版|横图|横构图|"
     r"橫版|橫圖|가로(?:형|로|\s*방향|\s*포스터|\s*이미지|\s*사진|\s*화면|\s*구도|\s*(?=\d{1,2}\s*[:x]\s*\d))"),
]
_SHAPE_RX = [(kind, fmt, aspect, re.compile(rx, re.IGNORECASE)) for kind, fmt, aspect, rx in _SHAPES]


_SPACED_SIZE = re.compile(r"(?<![\d.,])(\d{1,2})(?:[ \u00a0\u202f](\d{3}))?\s*[x\u00d7]\s*"
                          r"(\d{1,2})(?:[ \u00a0\u202f](\d{3}))?(?![\d.,])")
_LOOKALIKE_X = re.compile(r"(?<=\d)[\u0445\u0425\u03c7](?=\s*\d)")


def normalize(text: str) -> str:
    """Full-width digits, colons and letters as ASCII (NFKC): a full-width "16:9" reads as "16:9"."""
    # "20000\u04452500" (Cyrillic): a Cyrillic or Greek letter typed for the times sign between two numbers
    text = _LOOKALIKE_X.sub("x", unicodedata.normalize("NFKC", text))
    # "2 000 x 1 000 pixlar": a space between the thousands of a size
    return _SPACED_SIZE.sub(lambda m: f"{m.group(1)}{m.group(2) or ''}x{m.group(3)}{m.group(4) or ''}"
                            if m.group(2) or m.group(4) else m.group(0), text)


def find_shape(text: str) -> Shape | None:
    """The shape ``text`` names, or ``None``; a phone or banner format wins over an orientation
    word, and of two orientations the first one said."""
    text = normalize(text)
    found: list[tuple[int, int, Shape]] = []
    for rank, (kind, fmt, aspect, rx) in enumerate(_SHAPE_RX):
        m = rx.search(text)
        if m:
            found.append((rank if kind != "oriented" else len(_SHAPE_RX), m.start(),
                          Shape(fmt, aspect, m.group(0).strip(" ,;:("), kind)))
    if not found:
        return _lexicon_orientation(text)
    best = min(found, key=lambda f: (f[0], f[1]))
    if best[2].kind == "oriented":  # "the photo is portrait but the website needs landscape": the one asked
        asked = [f for f in found if f[2].kind == "oriented" and _TARGET_BEFORE.search(text[:f[1]])]
        if asked and asked[0][2].format != best[2].format:
            return asked[0][2]
    return best[2]


# the words before the orientation a picture is to take, where another describes the given one
_TARGET_BEFORE = re.compile(r"\b(?:needs?|wants?|should be|has to be|must be|make (?:it|um|them|this)|"
                            r"turn (?:it |this )?(?:in)?to|into|change (?:it )?to|convert (?:it )?to|"
                            r"switch (?:it )?to|works? as|use (?:it |this )?as|as)"
                            r"\s+(?:a |an |in |be |the )?$",
                            re.IGNORECASE)


# words other languages borrow from English, which read English prompts as adjectives ("a vertical
# garden"), and panoramic words, which the panorama rules read (a panorama is no 3:2 picture)
_ENGLISH_SHAPE_WORDS = {"vertical", "horizontal", "portrait", "landscape", "wide", "tall", "square",
                        "upright", "widescreen", "panorama", "panoramic"}
# a single word is a shape only when it names the picture's format (fi "pystykuva", de "Hochformat",
# ja "縦長"), not an adjective a subject may take (el "ένα κάθετο τοίχο", "a vertical wall")
_FORMAT_MORPHEME = re.compile(r"kuva|format|formaat|bild|kép|obraz|resim|gambar|ảnh|picha|larawan|"
                              r"картин|фото|εικόν|φωτογραφ|תמונה|صورة|عکس|ภาพ|รูป|图|圖|画|版|屏|幅|構図|"
                              r"向き|位置|長|형|로|tilstand|läge|modus|stand|oriënt|kant|"
                              r"apaisad", re.IGNORECASE)
_PANORAMIC = re.compile(r"panor|パノラマ|全景|파노라마|πανόραμα|πανοραμ|панорам", re.IGNORECASE)


_CLAUSE_END = re.compile(r"[,;.:()!?\u060c\u061b\u3001\u3002\uff0c\n]")


def _alone(text: str, start: int, end: int) -> bool:
    """Whether the word at ``start:end`` is a clause of at most two words ("..., yatay olsun",
    "..., افقی (لینڈ اسکیپ)"): an orientation said of the picture, not an adjective of a subject."""
    left = max((m.end() for m in _CLAUSE_END.finditer(text, 0, start)), default=0)
    right = next((m.start() for m in _CLAUSE_END.finditer(text, end)), len(text))
    # a conjunction joins two asks ("yatay olsun ve renkli": horizontal, and colourful)
    left = max((m.end() for m in _AND.finditer(text, left, start)), default=left)
    right = next((m.start() for m in _AND.finditer(text, end, right)), right)
    return len(text[left:right].split()) <= 2


_AND = re.compile(r"\s(?:and|ve|und|et|y|e|i|og|och|en|na|dan|và|és|ja|și|a)\s", re.IGNORECASE)


# a format noun right after a lexicon's orientation word ("усправан формат за штампу")
_NOUN_AFTER = re.compile(r"\s+(?:" + _FORMAT_NOUNS + r")(?!\w)", re.IGNORECASE)


def _lexicon_orientation(text: str) -> Shape | None:
    """An orientation word of a language of :mod:`agents.lexicon` ("pystykuva", "פורמט לאורך",
    "querformat"), the first one said: what the patterns above do not read."""
    from agents.lexicon import words_of

    hits = [(m.start(), fmt, m.group(0)) for fmt in ("tall", "wide") for m in words_of(fmt).finditer(text)
            if m.group(0).lower() not in _ENGLISH_SHAPE_WORDS and not _PANORAMIC.search(m.group(0))
            and (re.search(r"\W", m.group(0).strip()) or _FORMAT_MORPHEME.search(m.group(0))
                 or _alone(text, m.start(), m.end()) or _NOUN_AFTER.match(text, m.end()))]
    if not hits:
        return None
    _start, fmt, phrase = min(hits)
    return Shape(fmt, 1 / ORIENTED if fmt == "tall" else ORIENTED, phrase, "oriented")


_BARE = re.compile(r"\b(?:(landscape|horizontal\w*|querformat|quer|paysage|apaisad[oa]|orizzontale|"
                   r"liggend\w*|"
                   r"yatay|"
                   r"poziom\w*|альбомн\w*)|(portrait|vertical\w*|hochformat|staand\w*|verticale|dikey|pionow\w*|"
                   r"книжн\w*))\b",
                   re.IGNORECASE)


def strip_shapes(text: str) -> str:
    """``text`` without the phrases that name its shape (the subject is read from the rest)."""
    for *_x, rx in _SHAPE_RX:
        text = rx.sub(" ", text)
    return text


def says_landscape(text: str) -> bool | None:
    """``True`` when the text names a wide orientation, ``False`` a tall one, else ``None``.
    Beside a paper or print size a bare "landscape" or "portrait" is its orientation too."""
    shape = find_shape(text)
    if shape is not None:
        return shape.format == "wide"
    m = _BARE.search(text)
    return None if m is None else m.group(1) is not None


# -- ratios -----------------------------------------------------------------------------------

_NUM = r"\d{1,2}(?:\.\d{1,3})?"
_COLON = re.compile(rf"(?<![\d:.])({_NUM})\s*[:\u2236]\s*({_NUM})(?![\d:])"
                    r"(?!\s*(?:am|pm|a\.m|p\.m|o'?clock|h\b|uhr|heures?|horas?|時|scale\b))", re.IGNORECASE)
_TO_WORD = re.compile(r"(?<![\d.:])(\d{1,2})\s+(?:zu|op|sur|na|на|к|ku|til|till|à)\s+(\d{1,2})(?![\d.:])",
                      re.IGNORECASE)
_BY = re.compile(rf"(?<![\d.])({_NUM})\s*(?:x|\u00d7|by|to|/)\s*({_NUM})(?![\d.])", re.IGNORECASE)
_BEFORE = re.compile(r"(?:\b(?:aspect(?:\s+ratio)?|ratio|format|ar|proportions?|seitenverh[äa]ltnis|"
                     r"rapport|relaci[oó]n de aspecto|proporzioni|propor[cç][aã]o|比例|比率|アスペクト比)"
                     r"\s*(?:of|is|=|:|de|di|von)?\s*|--ar\s+)$", re.IGNORECASE)
_AFTER = re.compile(r"^\s*(?:aspect(?:\s+ratio)?|ratio|format|frame|crop|proportions?|shape)\b",
                    re.IGNORECASE)
_TIME_BEFORE = re.compile(r"\b(?:at|around|until|till|by|from|since|before|after|to|um|à|a las|alle)\s*$",
                          re.IGNORECASE)
# a physical size: "24x36 inch poster", "50 x 70 cm", "8x10 print"
_IN_CM = {"cm": 1.0, "mm": 0.1, "m": 100.0, "in": 2.54, "inch": 2.54, "inches": 2.54, '"': 2.54, "″": 2.54,
          "ft": 30.48, "feet": 30.48, "foot": 30.48, "pulgadas": 2.54, "pulg": 2.54, "polegadas": 2.54,
          "pouces": 2.54, "zoll": 2.54, "pollici": 2.54, "\u0441\u043c": 1.0, "\u043c\u043c": 0.1}
_LENGTH = (r"(cm|mm|m|in|inch|inches|\"|″|ft|feet|foot|pulgadas|pulg|polegadas|pouces|zoll|pollici|"
           "\u0441\u043c|\u043c\u043c)")  # and the Cyrillic cm and mm
_PHYSICAL = re.compile(r"(?<![\d.])(\d{1,4}(?:\.\d{1,2})?)\s*(?:" + _LENGTH + r"(?![\w\"″])\.?\s*)?"
                       r"(?:x|\u00d7|by|\u043d\u0430)\s*"  # and "60 на 90 см"
                       r"(\d{1,4}(?:\.\d{1,2})?)\s*"
                       r"(?:" + _LENGTH + r"(?![\w\"″])|(?=\s*(?:[\w-]+\s+)?(?:posters?|prints?|canvas|"
                       r"photos?|frames?|postcards?|paper|art ?prints?|wall art|portrait|cards?|"
                       r"greeting cards?|invitations?|flyers?|book ?covers?|banners?|roll-?ups?|stickers?|"
                       r"labels?|scrolls?|"
                       r"landscape)\b))", re.IGNORECASE)
# a format noun just before a common ratio: "banner 1 by 3", "poster 2x3", "print in 4:5"
_NOUN_BEFORE = re.compile(r"\b(?:banners?|posters?|prints?|flyers?|canvas|wallpapers?|cards?|covers?|photos?|"
                          r"panoramas?|panos?|strips?|"
                          r"fotos?|"
                          r"фото|"
                          r"scrolls?|"
                          r"roll-?ups?|stickers?|thumbnails?|frames?|crops?|formats?)\s*(?:of|at|in|is|as|,|:)?\s*$",
                          re.IGNORECASE)
_UNIT = r"(?:\s*(?:cm|mm|in|inch|inches|\"|″|ft|feet|px|pixels|tiles|squares|cells|blocks|frames|panels)\b)?"
_WIDE_BY_TALL = re.compile(r"(?<![\d.])(\d{1,5}(?:\.\d{1,2})?)" + _UNIT
                           + r"\s*(?:wide|long)\s*(?:x|\u00d7|by|and|,)?\s*(\d{1,5}(?:\.\d{1,2})?)" + _UNIT
                           + r"\s*(?:tall|high)\b", re.IGNORECASE)
_ALONE_BEFORE = re.compile(r"(?:^|[,;(]|--)\s*$")
_ALONE_AFTER = re.compile(r"\s*(?:$|[,;.)])")
# "aspect 1.5", "aspect ratio of 0.8": one number
_ASPECT_NUMBER = re.compile(r"\baspect(?:\s+ratio)?\s*(?:of|is|=|:)?\s*(\d(?:\.\d{1,3})?)\b"
                            r"(?!\s*(?:[:x/\u00d7]|by|to)\s*\d)", re.IGNORECASE)
# the print and photo sizes people name without a unit ("8.5 x 11", "foto 10x15", "50x70"): at the end of a
# clause they give the shape
_PRINT_SIZES = {(8.5, 11), (11, 17), (8.5, 14), (4, 6), (5, 7), (8, 10), (11, 14), (16, 20), (18, 24),
                (24, 36),
                (10, 15), (13, 18), (20, 30), (30, 40), (40, 50), (50, 70), (60, 90), (70, 100), (21, 29.7),
                (29.7, 42), (42, 59.4)}
_PRINT_SIZES |= {(b, a) for a, b in _PRINT_SIZES}
# ratios no one writes for anything else
_PLAIN_BY = {(16, 9), (9, 16), (21, 9), (9, 21), (16, 10), (10, 16), (32, 9)}
COMMON = {(1, 1), (4, 3), (3, 4), (3, 2), (2, 3), (16, 9), (9, 16), (21, 9), (9, 21), (5, 4), (4, 5),
          (2, 1), (1, 2), (3, 1), (1, 3), (4, 1), (1, 4), (16, 10), (10, 16), (32, 9), (9, 32), (7, 5),
          (5, 7), *((n, 1) for n in range(5, 9)), *((1, n) for n in range(5, 9))}
# a strip's ratio ("a 20:1 panorama strip"): only beside a word of a strip's format (a "1:18 scale model"
# is none)
_STRIP = {*((n, 1) for n in range(9, 33)), *((1, n) for n in range(9, 33))}
_STRIP_WORD = re.compile(r"^\W*(?:[\w-]+\s+)?(?:panoram\w*|pano|strip|banner|frieze|header|scroll|"
                         r"ratio|aspect|format)\b", re.IGNORECASE)


_TIMES_WORDS = {"twice": 2.0, "two times": 2.0, "three times": 3.0, "thrice": 3.0, "four times": 4.0}
_TIMES_AS = re.compile(r"\b(twice|two times|three times|thrice|four times|\d(?:\.\d)?)\s*(?:x\s*|times\s*)?"
                       r"as\s+(wide|tall|high|long)\s+as\s+(?:it\s+is\s+|it's\s+)?(?:wide|tall|high)\b",
                       re.IGNORECASE)


# "the width 4 times the height", "height twice the width"
_TIMES_OF = re.compile(r"\b(width|wide|length|long|height|tall|high)\s+(?:is\s+|of\s+|=\s*)?"
                       r"(twice|two times|three times|thrice|four times|\d(?:\.\d)?\s*(?:x|times))\s+"
                       r"(?:the\s+|its\s+)?(height|width|length)\b", re.IGNORECASE)
# a map's grid of cells ("battle map, 30x20 grid"): its shape, where both sides count five cells or more (a
# "3x4 grid" of stickers is a layout)
_GRID = re.compile(r"(?<![\d.])(\d{1,3})\s*(?:x|\u00d7|by)\s*(\d{1,3})\s*-?\s*(?:grid|squares?|tiles?|cells?|"
                   r"hex(?:es)?)\b", re.IGNORECASE)


def _value(a: str, b: str) -> tuple[float, float] | None:
    x, y = float(a), float(b)
    return (x, y) if x > 0 and y > 0 else None


def _ok(x: float, y: float) -> bool:
    return 0.1 <= x / y <= 10


def explicit_ratio(text: str) -> tuple[float, tuple[int, int]] | None:
    """The aspect (width / height) a ratio or a poster size in ``text`` gives, and the span
    to cut from the prompt; ``None`` without one. A time of day
    ("at 10:30"), a count ("a 3x4 grid") or a zoom ("2x") is no ratio."""
    text = normalize(text)
    for m in _COLON.finditer(text):
        pair = _value(m.group(1), m.group(2))
        # "at 10:30" is a time; "to 16:9" is no time (a time's minutes have two digits)
        if pair is None or (_TIME_BEFORE.search(text[:m.start()]) and len(m.group(2).strip()) == 2):
            continue
        x, y = pair
        before = _BEFORE.search(text[:m.start()])
        decimal = "." in m.group(1) or "." in m.group(2)
        strip = x.is_integer() and y.is_integer() and (int(x), int(y)) in _STRIP \
            and bool(_STRIP_WORD.match(text[m.end():]) or before)
        if (x.is_integer() and y.is_integer() and (int(x), int(y)) in COMMON) or strip or \
                (decimal and 1.0 in pair and _ok(x, y)) or (before and _ok(x, y)) or \
                (_AFTER.match(text[m.end():]) and _ok(x, y)):
            return x / y, (before.start() if before else m.start(), m.end())
    for m in _WIDE_BY_TALL.finditer(text):  # "3 inches wide by 4 tall", "40 cm wide and 60 cm high"
        pair = _value(m.group(1), m.group(2))
        if pair and _ok(*pair):
            return pair[0] / pair[1], m.span()
    for m in _PHYSICAL.finditer(text):
        pair = _value(m.group(1), m.group(3))
        if pair and m.group(2) and m.group(4):  # "6 feet by 1 foot", "1 m x 50 cm": each side in its unit
            pair = (pair[0] * _IN_CM[m.group(2).lower()], pair[1] * _IN_CM[m.group(4).lower()])
        if pair and _ok(*pair):
            x, y = pair
            landscape = says_landscape(text)
            if landscape is not None and (x > y) != landscape and x != y:
                x, y = y, x  # "a 24x36 poster, landscape": 36 wide
            return x / y, m.span()
    for m in _BY.finditer(text):
        pair = _value(m.group(1), m.group(2))
        if pair is None:
            continue
        x, y = pair
        before = _BEFORE.search(text[:m.start()])
        whole = x.is_integer() and y.is_integer()
        plain = whole and (int(x), int(y)) in _PLAIN_BY
        # a common ratio standing alone as a clause: "a cat, 2x3", "a dragon, 21/9"
        alone = whole and (int(x), int(y)) in COMMON and _ALONE_BEFORE.search(text[:m.start()]) \
            and _ALONE_AFTER.match(text[m.end():])
        noun = whole and (int(x), int(y)) in COMMON and _NOUN_BEFORE.search(text[:m.start()])
        to_one = ("." in m.group(1) or "." in m.group(2)) and 1.0 in pair \
            and re.match(r"\s*to\b", text[m.end(1):], re.IGNORECASE)  # "2.39 to 1 widescreen"
        printed = (x, y) in _PRINT_SIZES and (_ALONE_AFTER.match(text[m.end():])
                                              or _NOUN_BEFORE.search(text[:m.start()]))
        if printed and not noun and not before:
            landscape = says_landscape(text)
            if landscape is not None and (x > y) != landscape:
                x, y = y, x  # "8.5 x 11, landscape"
        if _ok(x, y) and (before or _AFTER.match(text[m.end():]) or plain or alone or noun or printed
                          or to_one):
            return x / y, (before.start() if before else m.start(), m.end())
    for m in _TO_WORD.finditer(text):  # "2 zu 1", "16 op 9", "16 na 9": a common ratio in words
        pair = _value(m.group(1), m.group(2))
        if pair and pair[0].is_integer() and pair[1].is_integer() and (int(pair[0]), int(pair[1])) in COMMON:
            return pair[0] / pair[1], m.span()
    m = _TIMES_OF.search(text)  # "width 4 times the height"
    if m:
        n = _TIMES_WORDS.get(m.group(2).lower()) or float(re.match(r"[\d.]+", m.group(2)).group(0))
        if 1 < n <= 10:
            wide = m.group(1).lower() in ("width", "wide", "length", "long")
            return (n if wide else 1 / n), m.span()
    for m in _GRID.finditer(text):
        x, y = int(m.group(1)), int(m.group(2))
        if min(x, y) >= 5 and _ok(x, y):
            return x / y, m.span()
    m = _TIMES_AS.search(text)  # "twice as wide as it is tall"
    if m:
        n = _TIMES_WORDS.get(m.group(1).lower()) or float(m.group(1))
        if 1 < n <= 10:
            return (n if m.group(2).lower() in ("wide", "long") else 1 / n), m.span()
    m = _ASPECT_NUMBER.search(text)
    if m and 0.1 <= float(m.group(1)) <= 10:
        return float(m.group(1)), m.span()
    return None
