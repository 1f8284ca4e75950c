"""A mask the user gives, told from one a subject wears.

"mask attached", "I masked the empty strips", "masku přikládám" give a mask; "a woman wearing a face
mask" or "a masked vigilante" name one in the picture, which is no input.
"""

from __future__ import annotations

import re

from agents import lexicon
from agents.orientation import normalize
from agents.typos import fix_typos

# a mask the user gives, in other languages
MASK_FOREIGN = re.compile(r"m[áa]scara|maschera|\bmaske\w*|\bmas(?:ce|ka|ku|kou|ky)\b|"
                          r"\bmasque\b|\bmasker\b|\b(?:za|ze|o)?mask\w*|gemaskeerd\w*|"
                          r"маск\w*|μάσκ\w*|m[ặa]t n[ạa]|マスク|蒙版|遮罩|마스크|(?:ال)?قناع\w*|"
                          r"(?<!\w)بالقناع", re.IGNORECASE)


# a mask the subject wears, not one the user gives
SUBJECT_MASK = re.compile(
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


USER_MASK = re.compile(
    r"(?<![/\\.\w-])[\w-]*mask[\w-]*\.(?:png|jpe?g|webp|bmp|tiff?)\b|"  # a mask named as a file
    r"\b(?:my|this|our|the attached|attached|the given|the uploaded|the provided)\s+mask\b|"
    r"\bmask (?:is |was )?(?:attached|included|image|file|provided|given|uploaded)\b|"
    r"\bthe mask (?:marks|shows|covers|says|indicates|defines)\b|"
    r"\bmasked (?:area|region|part|zone|spot|section)\b|"
    r"\b(?:i|we)(?:'ve| have)? (?:masked|painted a mask|drew a mask|made a mask|marked)\b|\(mask\b|"
    # "mask is a circle in the middle (attached)"
    r"\bmask\b[^.;!?()]{0,40}\(\s*(?:attached|uploaded|enclosed|included)\s*\)|"
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


def mask_given(prompt: str) -> bool:
    """Whether the words of ``prompt`` say the user gives a mask: in English ("I drew a mask",
    "mask attached"), or a mask word beside a verb of giving in a language of the lexicon
    ("masku přikládám", "pakai mask yang aku kirim"); a worn mask never is."""
    prompt = fix_typos(normalize(prompt))[0]
    if USER_MASK.search(prompt):
        return True
    if SUBJECT_MASK.search(prompt):
        return False
    return lexicon.gives_input(prompt, MASK_FOREIGN) \
        or lexicon.gives_input(prompt, lexicon.words_of("mask")) \
        or lexicon.points_at(prompt, lexicon.words_of("mask", spaced_only=True))  # "på min maske"


def gives_mask(prompt: str) -> bool:
    """Whether the words of ``prompt`` say the user gives a mask ("I masked the empty strips",
    "zaznaczyłem maską"), not one a subject wears ("a woman wearing a face mask")."""
    prompt = fix_typos(normalize(prompt))[0]
    if USER_MASK.search(prompt):
        return True
    return bool(MASK_FOREIGN.search(prompt)) and not SUBJECT_MASK.search(prompt)
