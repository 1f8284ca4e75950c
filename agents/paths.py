"""File system paths in a prompt: the planner never reads one.

Inputs come only from the files given by role; a path in the words is either the given picture
("colorize C:\\opa_1921.jpg") or, where the prompt sends something to a path or is a prompt
injection, a clause that is not read at all.
"""

from __future__ import annotations

import re

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
