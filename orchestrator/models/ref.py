"""Model references: how a block names the model it needs.

A block param ``model`` is either a plain name (``"tiny-sd"``) or an object that adds
personalisation on top of the base model: LoRAs (several, each with its weight) and
textual-inversion embeddings, all loaded from ``.safetensors`` files::

    {"name": "tiny-sd",
     "loras": [{"path": "my_dog.safetensors", "weight": 0.8}],
     "embeddings": [{"path": "style", "token": "<my-style>"}]}

A LoRA or embedding ``path`` is a name: a file in the model folders' ``loras/`` or
``embeddings/`` (``sub/name.safetensors``, with or without the extension) or a configured
entry; only the in-process CLI also takes a file path (see ``ModelRegistry.resolve_file``).
Two references with the same contents have the same :meth:`ModelRef.key`, which is what a
worker caches by.

>>> ModelRef.parse("tiny-sd").key()
'tiny-sd'
>>> ref = ModelRef.parse({"name": "tiny-sd", "loras": [{"path": "a.safetensors", "weight": 0.5}]})
>>> ref.key()
'tiny-sd+lora(a.safetensors@0.5)'
>>> ref.base().key()
'tiny-sd'
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator


class LoraRef(BaseModel):
    """One LoRA applied to the model's UNet and text encoders, scaled by ``weight``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    path: str = Field(..., min_length=1, max_length=512,
                      description="a LoRA by name (model folders' loras/, or a configured entry)")
    weight: float = Field(1.0, ge=-10.0, le=10.0, description="strength of the LoRA (0 disables it)")


class EmbeddingRef(BaseModel):
    """One textual-inversion embedding, used in prompts as ``token``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    path: str = Field(..., min_length=1, max_length=512,
                      description="an embedding by name (model folders' embeddings/, or a configured entry)")
    token: str | None = Field(None, min_length=1, description="the prompt word; default: the file's stem")


class ModelRef(BaseModel):
    """A model by name, plus the LoRAs and embeddings to apply to it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(..., min_length=1, description="a model configured in the registry, e.g. 'tiny-sd'")
    loras: tuple[LoraRef, ...] = Field((), description="LoRAs to merge, each with its weight")
    embeddings: tuple[EmbeddingRef, ...] = Field((), description="textual-inversion embeddings")

    @model_validator(mode="before")
    @classmethod
    def _from_string(cls, value: Any) -> Any:
        if isinstance(value, str):
            return {"name": value}
        return value

    @classmethod
    def parse(cls, value: str | dict[str, Any] | ModelRef) -> ModelRef:
        """A reference from a name, a dict or another reference."""
        if isinstance(value, ModelRef):
            return value
        return cls.model_validate(value)

    def key(self) -> str:
        """A canonical string naming this exact combination (what caches are keyed by)."""
        parts = [self.name]
        parts += [f"lora({lr.path}@{lr.weight:g})" for lr in self.loras]
        parts += [f"emb({e.path}{'=' + e.token if e.token else ''})" for e in self.embeddings]
        return "+".join(parts)

    def base(self) -> ModelRef:
        """The same model without LoRAs and embeddings."""
        return ModelRef(name=self.name)

    @property
    def personalised(self) -> bool:
        return bool(self.loras or self.embeddings)

    def __str__(self) -> str:
        return self.key()
