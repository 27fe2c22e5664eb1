"""Providers (OpenAI-compatible endpoints) and model prices."""

from __future__ import annotations

import logging
import os
from datetime import date
from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator
from django.db import models
from django.utils import timezone

from routerapp.providers.addresses import is_private_base_url
from routerapp.secrets import decrypt, encrypt

logger = logging.getLogger(__name__)

# Environment variables a provider may read its key from: this prefix, or a name listed in the
# PROVIDER_KEY_ENV_ALLOWED setting. Anything else (SECRET_KEY, DATABASE_URL ...) would be sent
# upstream as `Authorization: Bearer <value>`.
PROVIDER_KEY_ENV_PREFIX = "ROUTERAPP_PROVIDER_KEY_"


def api_key_env_allowed(name: str) -> bool:
    if name.startswith(PROVIDER_KEY_ENV_PREFIX) and len(name) > len(PROVIDER_KEY_ENV_PREFIX):
        return True
    return name in settings.PROVIDER_KEY_ENV_ALLOWED


def api_key_env_rule() -> str:
    allowed = ", ".join(settings.PROVIDER_KEY_ENV_ALLOWED) or "none"
    return (
        f"Only variables named {PROVIDER_KEY_ENV_PREFIX}<NAME> or listed in "
        f"PROVIDER_KEY_ENV_ALLOWED ({allowed}) may hold a provider key."
    )


class Provider(models.Model):
    class Kind(models.TextChoices):
        OPENAI_COMPATIBLE = "openai", "OpenAI-compatible endpoint"
        SIMULATOR = "simulator", "Built-in simulator"

    name = models.SlugField(max_length=64, unique=True)
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.OPENAI_COMPATIBLE)
    base_url = models.URLField(
        max_length=500,
        blank=True,
        help_text="e.g. https://api.openai.com/v1 (ignored for the simulator)",
    )
    api_key_encrypted = models.TextField(blank=True, editable=False)
    api_key_env = models.CharField(
        max_length=128, blank=True, help_text="Name of an environment variable holding the API key."
    )
    timeout_seconds = models.FloatField(default=30.0, validators=[MinValueValidator(0.1)])
    max_retries = models.PositiveSmallIntegerField(default=0)
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def is_simulator(self) -> bool:
        return self.kind == self.Kind.SIMULATOR

    @property
    def has_api_key(self) -> bool:
        return bool(self.api_key_encrypted or self.api_key_env)

    @property
    def api_key_env_refused(self) -> bool:
        """A stored variable name that is not (or no longer) allowed: no key is sent."""
        return bool(self.api_key_env) and not api_key_env_allowed(self.api_key_env)

    @property
    def base_url_is_private(self) -> bool:
        return not self.is_simulator and is_private_base_url(self.base_url)

    def set_api_key(self, raw_key: str) -> None:
        self.api_key_encrypted = encrypt(raw_key) if raw_key else ""

    def resolve_api_key(self) -> str:
        """The key to send upstream, "" for none; never shown by any page or API."""
        if self.api_key_encrypted:
            return decrypt(self.api_key_encrypted)
        if self.api_key_env:
            if self.api_key_env_refused:
                # Checked here as well as at save: a row written before the rule (or a setting
                # narrowed since) must not send another secret upstream. The name is logged,
                # never the value.
                logger.warning(
                    "provider %s: api_key_env %s is not allowed, no key sent. %s",
                    self.name,
                    self.api_key_env,
                    api_key_env_rule(),
                )
                return ""
            return os.environ.get(self.api_key_env, "")
        return ""

    def clean(self) -> None:
        errors: dict[str, str] = {}
        if self.kind == self.Kind.OPENAI_COMPATIBLE and not self.base_url:
            errors["base_url"] = "An OpenAI-compatible provider needs a base URL."
        if self.api_key_env_refused:
            errors["api_key_env"] = api_key_env_rule()
        if errors:
            raise ValidationError(errors)


class ModelPrice(models.Model):
    """USD per 1M tokens, effective from a date, so past costs stay right when prices change."""

    provider = models.ForeignKey(Provider, on_delete=models.CASCADE, related_name="prices")
    model = models.CharField(max_length=200)
    input_per_million = models.DecimalField(
        max_digits=12, decimal_places=6, validators=[MinValueValidator(Decimal(0))]
    )
    output_per_million = models.DecimalField(
        max_digits=12, decimal_places=6, validators=[MinValueValidator(Decimal(0))]
    )
    effective_from = models.DateField(default=date(2024, 1, 1))
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["provider_id", "model", "-effective_from"]
        constraints = [
            models.UniqueConstraint(
                fields=["provider", "model", "effective_from"], name="unique_price_per_day"
            )
        ]
        indexes = [models.Index(fields=["provider", "model", "-effective_from"])]

    def __str__(self) -> str:
        return f"{self.provider}/{self.model} from {self.effective_from}"
