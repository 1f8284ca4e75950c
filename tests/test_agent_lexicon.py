# ruff: noqa: RUF001
"""The multilingual lexicon of a picture the user gives (agents.lexicon): its data is well formed,
a pointed-at picture is read as given in many languages, a picture to be made is not, two given
pictures are told apart from one, and the planner asks for what the words imply."""

from __future__ import annotations

import pytest

from agents import lexicon
from agents.labels import classify
from agents.lexicon_data import LEXICON

FIELDS = ("picture", "before", "after", "forms", "phrases", "inside", "give", "style", "palette", "colorize",
          "extend",
          "mask", "second", "remove", "tall", "wide", "square",
          "left", "right", "top", "bottom", "hires", "upscale", "face", "hand", "fix")


def test_every_language_has_every_field_in_lower_case() -> None:
    assert len(LEXICON) >= 30
    for lang, entry in LEXICON.items():
        assert set(entry) == set(FIELDS), lang
        for name, values in entry.items():
            assert isinstance(values, tuple), (lang, name)
            for v in values:
                assert isinstance(v, str) and v == v.lower() and v.strip() == v and v, (lang, name, v)
        assert entry["picture"], lang
        # a lone word of two letters would point at anything ("ku", "na"); a Hangul syllable standing
        # apart ("이 배경 사진": this background photo) is a determiner, a word of its own
        for name in ("before", "after", "give"):
            assert all(len(v) > 2 or lang in lexicon.UNSPACED or all("\uac00" <= c <= "\ud7a3" for c in v)
                       for v in entry[name]), (lang, name)


GIVEN = [
    "Verander deze foto in een aquarel",  # nl
    "Mach aus meinem Foto ein Ölgemälde",  # de
    "transforme cette photo en peinture à l'huile",  # fr
    "convierte esta foto en un cuadro al óleo",  # es
    "trasforma questa foto in un acquerello",  # it
    "transforme esta foto em uma pintura a óleo",  # pt
    "gör om den här bilden till en akvarell",  # sv
    "zamień to zdjęcie w obraz olejny",  # pl
    "převeď tuto fotku na olejomalbu",  # cs
    "alakítsd át ezt a fotót olajfestménnyé",  # hu
    "transformă această fotografie într-o pictură în ulei",  # ro
    "muuta tämä kuva öljymaalaukseksi",  # fi
    "bu fotoğrafı yağlı boya tabloya çevir",  # tr
    "перетвори це фото на картину олією",  # uk
    "преврати это фото в картину маслом",  # ru
    "μετάτρεψε αυτή τη φωτογραφία σε ελαιογραφία",  # el
    "הפוך את התמונה הזאת לציור שמן",  # he
    "حوّل هذه الصورة إلى لوحة زيتية",  # ar
    "این عکس را به نقاشی رنگ روغن تبدیل کن",  # fa
    "इस फोटो को ऑयल पेंटिंग में बदल दो",  # hi
    "ubah foto ini menjadi lukisan cat minyak",  # id
    "biến ảnh này thành tranh sơn dầu",  # vi
    "เปลี่ยนรูปนี้เป็นภาพสีน้ำมัน",  # th
    "gawin mong oil painting ang litratong ito",  # tl
    "badilisha picha hii kuwa mchoro wa mafuta",  # sw
    "この写真を油絵にして",  # ja
    "把这张照片变成油画",  # zh
    "이 사진을 유화로 바꿔줘",  # ko
    "Etendu ĉi tiun bildon maldekstren",  # eo
]

NEW = [
    "una foto de un gato en la nieve",  # es: a photo of a cat
    "ein Foto eines Hundes am Strand bei Sonnenuntergang",  # de
    "une photo d'un phare sous la tempête",  # fr
    "un ritratto di una donna anziana, luce morbida",  # it
    "zdjęcie kota na śniegu",  # pl
    "фото кошки на снегу",  # ru
    "bir kedinin karda fotoğrafı",  # tr
    "猫の写真、雪の中",  # ja
    "一只猫在雪地里的照片",  # zh
    "눈 속의 고양이 사진",  # ko
    "foto kucing di salju",  # id
    "a photo of a cat in the snow",  # en
]


@pytest.mark.parametrize("prompt", GIVEN)
def test_a_pointed_at_picture_is_given(prompt: str) -> None:
    assert lexicon.gives_picture(prompt), prompt
    assert classify(prompt).task != "text-to-image", prompt


@pytest.mark.parametrize("prompt", NEW)
def test_a_picture_to_make_is_not_given(prompt: str) -> None:
    assert not lexicon.gives_picture(prompt), (prompt, lexicon.mentions(prompt))
    assert classify(prompt).task == "text-to-image", prompt


@pytest.mark.parametrize(("prompt", "role"), [
    ("Trasforma la foto del mio outfit nello stile del dipinto di Klimt che ti allego", "style"),
    ("この写真の人物を、添付した浮世絵の画風に変えてください", "style"),
    ("Mach mein Foto im Stil des Gemäldes, das ich dir im Anhang schicke", "style"),
    ("Χρωμάτισε αυτό το σκίτσο με τα χρώματα της εικόνας που σου στέλνω", "palette"),
    ("pokoloruj to zdjęcie paletą kolorów z obrazka, który załączam", "palette"),
])
def test_a_second_picture_is_a_style_or_a_palette(prompt: str, role: str) -> None:
    assert lexicon.pictures(prompt) >= 2, lexicon.mentions(prompt)
    assert lexicon.second_picture_role(prompt) == role
    labels = classify(prompt)
    assert role in labels.intents and labels.task == "image-to-image", labels


def test_one_given_picture_in_a_style_is_no_second_picture() -> None:
    prompt = "trasforma la mia foto in stile anime"  # a restyle of the given photo, no style image
    assert lexicon.pictures(prompt) == 1
    assert lexicon.second_picture_role(prompt) is None
    assert "style" not in classify(prompt).intents


@pytest.fixture(scope="module")
def planner():
    from agents.context import PlanningContext, models_from_entries
    from agents.planner import Planner
    from orchestrator.plugins import load_plugins

    host = load_plugins()
    sd1 = {"name": "dreamy-sd15", "kind": "checkpoint", "family": "sd1", "origin": "folder"}
    ctx = PlanningContext.build(host.catalog, host.templates, models=models_from_entries([sd1]),
                                default_model="dreamy-sd15")
    return Planner(ctx)


@pytest.mark.parametrize(("prompt", "roles"), [
    ("Trasforma la foto del mio outfit nello stile del dipinto di Klimt che ti allego", ["image", "style"]),
    ("この写真の腕のタトゥーを、添付した浮世絵の画風に変えてください", ["image", "style"]),
    ("gawin mong oil painting ang litratong ito", ["image"]),
    ("badilisha picha hii kuwa mchoro wa mafuta", ["image"]),
    ("the bride's eyes are closed in this one, can you fix her face", ["image"]),
    ("healed tattoo pic on a forearm but the hand in the shot looks mangled, can u fix just the hand",
     ["image"]),
])
def test_the_planner_asks_for_what_the_words_imply(planner, prompt: str, roles: list[str]) -> None:
    from agents.errors import AgentError

    with pytest.raises(AgentError) as info:
        planner.plan(prompt)
    assert sorted(info.value.details["roles"]) == sorted(roles)


@pytest.mark.parametrize(("prompt", "intent"), [
    ("Mach mein Foto im Stil des zweiten Bildes", "style"),  # a second picture by its ordinal
    ("pokoloruj moje zdjęcie kolorami z drugiego obrazka", "palette"),
])
def test_an_ordinal_names_a_second_picture(prompt: str, intent: str) -> None:
    assert lexicon.pictures(prompt) >= 2
    assert intent in classify(prompt).intents


@pytest.mark.parametrize("prompt", [
    "ช่วยลบสายไฟในรูปนี้",  # th: remove the wires in this picture
    "töröld a villanyoszlopot erről a fotóról",  # hu: delete the pole from this photo
    "ลบรอยเปื้อนในรูปนี้ เฉพาะส่วนสีขาวในมาสก์",  # th: a mask word
])
def test_a_removal_from_a_given_picture_is_an_inpainting(prompt: str) -> None:
    assert classify(prompt).task == "inpaint"


def test_a_verb_of_giving_beside_a_mask_gives_the_mask_not_a_second_picture() -> None:
    from agents.given import OTHER_INPUT
    from agents.masks import mask_given

    prompt = "esta foto: borra el cartel, usa la máscara que te mando"
    assert lexicon.pictures(prompt, OTHER_INPUT) == 1
    assert mask_given(prompt) and "reference" not in classify(prompt).intents
    assert not mask_given("una mujer con una máscara veneciana en un baile")


@pytest.mark.parametrize(("prompt", "fmt"), [
    ("satukirjan kuvitus: siili ja orava metsässä, pystykuva kiitos", "tall"),  # fi
    ("כרזה לתערוכה על הדואר, פורמט לאורך", "tall"),  # he
    ("ein Leuchtturm im Sturm, Querformat", "wide"),  # de
    ("una foto vertical de un faro", "tall"),  # es: an orientation phrase with its noun
])
def test_orientation_words_of_the_lexicon_set_the_shape(prompt: str, fmt: str) -> None:
    from agents.orientation import find_shape

    shape = find_shape(prompt)
    assert shape is not None and shape.format == fmt, shape


@pytest.mark.parametrize("prompt", ["ένα κάθετο τοίχο με κισσό", "a vertical garden on an office wall",
                                    "un jardín vertical en la pared de una oficina"])
def test_an_orientation_adjective_of_a_subject_sets_no_shape(prompt: str) -> None:
    from agents.orientation import find_shape

    assert find_shape(prompt) is None


@pytest.mark.parametrize(("prompt", "regions"), [
    ("एक नई तस्वीर बनाओ: बाईं तरफ़ एक पुराना मंदिर और दाईं तरफ़ एक कांच की इमारत", {"left", "right"}),  # hi
    ("vasemmalla punainen kettu ja oikealla valkoinen pöllö, lumisessa metsässä", {"left", "right"}),  # fi
    ("solda kırmızı bir tilki, sağda beyaz bir baykuş", {"left", "right"}),  # tr
])
def test_sides_of_the_lexicon_split_regions(prompt: str, regions: set[str]) -> None:
    from agents.regions import split_regions

    base, found = split_regions(prompt)
    assert set(found) == regions and all(found.values()), (base, found)
    assert "regions" in classify(prompt).intents


@pytest.mark.parametrize(("prompt", "intent"), [
    ("o randare foarte detaliată a unui motor V8, fă-o în două treceri", "hires"),  # ro
    ("popraw twarz na tym zdjęciu, oczy są rozmazane", "detail"),  # pl: fix the face in this photo
    ("sửa bàn tay trong ảnh này, bị thừa ngón", "detail"),  # vi: fix the hand in this picture
])
def test_second_passes_and_fixes_in_other_languages(prompt: str, intent: str) -> None:
    assert intent in classify(prompt).intents
