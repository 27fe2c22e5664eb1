"""The demo's tasks as pure data: prompts with known right answers, for the seeds' three goals.

- `email_classification`: label an email `spam` or `not_spam`.
- `support_ticket_triage`: route a ticket to `billing`, `technical`, `account` or `other`.
- `task_complexity_routing`: a mixed workload (simple Q&A, summarisation, code, maths,
  multi-step reasoning) whose answers are short strings (a word, a name, a number).

Prompts come from templates with slots, so wording varies while every prompt's gold answer
stays known: `sample_prompts()` renders them for the traffic generator, `gold_label()` reads
the gold answer back from a prompt's text (the template's regex, else a keyword table), which
is how the simulator answers right when its quality draw says so, and `is_correct()` grades
an answer the way the traffic generator reports outcomes.

Pure: no Django, no I/O. `rng` is a `numpy.random.Generator` or a `random.Random`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import random

    import numpy as np

    Rng = np.random.Generator | random.Random

EMAIL = "email_classification"
TRIAGE = "support_ticket_triage"
MIXED = "task_complexity_routing"

# --------------------------------------------------------------------------- slot values

NAMES = ("Alice", "Bob", "Priya", "Marco", "Chen", "Fatima", "Jonas", "Olivia", "Kenji", "Sofia")
COMPANIES = ("Acme Corp", "Northwind", "Globex", "Initech", "Contoso", "Umbrella Health")
COMPANY_SLUGS = ("acme", "northwind", "globex", "initech", "contoso", "paypal-secure")
DOMAINS = ("acme.io", "northwind.com", "globex.net", "initech.dev")
PRODUCTS = ("laptop", "iPhone 16", "espresso machine", "smartwatch", "e-bike", "gaming console")
DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August")
TIMES = ("9:30", "11:00", "14:00", "15:30", "16:45")
CITIES = ("Berlin", "Lisbon", "Toronto", "Singapore", "Austin", "Nairobi")
PLANS = ("Starter", "Pro", "Team", "Business", "Enterprise")
FEATURES = ("reporting", "search", "notifications", "onboarding", "export")
DEVICES = ("Pixel 8", "iPhone 13", "Galaxy S23", "iPad Air")
ENDPOINTS = ("orders", "customers", "invoices", "events")
CAPITALS = {
    "France": "Paris",
    "Japan": "Tokyo",
    "Canada": "Ottawa",
    "Australia": "Canberra",
    "Kenya": "Nairobi",
    "Brazil": "Brasilia",
    "Norway": "Oslo",
    "Egypt": "Cairo",
}
SYMBOLS = {
    "gold": "Au",
    "iron": "Fe",
    "sodium": "Na",
    "potassium": "K",
    "silver": "Ag",
    "oxygen": "O",
    "helium": "He",
    "lead": "Pb",
}
REVIEWS = {
    "The battery lasts all day and setup took two minutes. Love it.": "positive",
    "Arrived broken and support never answered my emails.": "negative",
    "Honestly the best purchase I've made this year.": "positive",
    "It stopped working after a week and the refund took a month.": "negative",
    "Does exactly what it promises, quietly and reliably.": "positive",
    "Cheap plastic, the buttons stick, would not buy again.": "negative",
}
TOPICS = {
    "The central bank raised interest rates again to fight inflation, and mortgage costs "
    "rose for millions of households.": "economy",
    "The striker scored twice in the final minutes and the club lifted the cup for the first "
    "time in forty years.": "football",
    "Researchers sequenced the genome of the plant and found genes that help it survive "
    "drought.": "genetics",
    "The new phone has a faster chip, a brighter screen and a camera that works better at "
    "night.": "smartphones",
    "Heavy rain flooded the valley and the river reached its highest level in a "
    "century.": "weather",
}

# Slot name -> values (a tuple to choose from, or a range of integers). A slot named with a
# trailing digit (`name2`) draws from its base pool (`name`), distinct from the other slots
# of the same pool in that prompt.
POOLS: dict[str, Sequence[str] | range] = {
    "name": NAMES,
    "company": COMPANIES,
    "company_slug": COMPANY_SLUGS,
    "domain": DOMAINS,
    "product": PRODUCTS,
    "day": DAYS,
    "month": MONTHS,
    "time": TIMES,
    "city": CITIES,
    "plan": PLANS,
    "feature": FEATURES,
    "device": DEVICES,
    "endpoint": ENDPOINTS,
    "country": tuple(CAPITALS),
    "element": tuple(SYMBOLS),
    "review": tuple(REVIEWS),
    "paragraph": tuple(TOPICS),
    "amount": range(40, 2000),
    "small": range(2, 60),
    "percent": range(5, 60),
    "number": range(1000, 99999),
    "quarter": range(1, 5),
}
# Sets an answer may come from, used to make plausible wrong answers.
ANSWER_POOLS: tuple[tuple[str, ...], ...] = (
    tuple(CAPITALS.values()),
    tuple(SYMBOLS.values()),
    ("positive", "negative"),
    tuple(TOPICS.values()),
    NAMES,
    DAYS,
    PRODUCTS,
)


# --------------------------------------------------------------------------- types


@dataclass(frozen=True)
class Template:
    """One prompt shape. Gold is `label` (classification) or `solve(slots)` (computed)."""

    text: str
    task_type: str
    complexity: int
    label: str | None = None
    solve: Callable[[Mapping[str, str]], str] | None = None
    slots: Mapping[str, Sequence[str] | range] = field(default_factory=dict)
    match: str = "exact"  # "exact": the answer is the gold; "contains": it mentions the gold

    def gold(self, values: Mapping[str, str]) -> str:
        if self.label is not None:
            return self.label
        assert self.solve is not None, "a template needs a label or a solve function"
        return self.solve(values)


@dataclass(frozen=True)
class DemoTask:
    slug: str
    description: str
    system_prompt: str
    labels: tuple[str, ...]  # empty for free-form answers
    templates: tuple[Template, ...]


@dataclass(frozen=True)
class DemoPrompt:
    """A rendered prompt. `messages` hold the user turn only: the goal's paths carry the system
    prompt (`system_prompt(goal)`), and the router prepends it."""

    goal: str
    messages: list[dict[str, Any]]
    gold: str
    task_type: str
    complexity_hint: int
    match: str = "exact"

    @property
    def text(self) -> str:
        return str(self.messages[-1]["content"])


@dataclass(frozen=True)
class DemoMatch:
    """What `recognise()` knows about a request that looks like a demo prompt."""

    goal: str
    gold: str | None  # None when the goal is known but the text matches nothing
    task_type: str
    complexity: int
    labels: tuple[str, ...]
    alternatives: tuple[str, ...]  # plausible wrong answers


# --------------------------------------------------------------------------- answers


def _number(value: float) -> str:
    """Gold numbers as a model would write them: 150, 12.5, 0.75."""
    if float(value).is_integer():
        return str(int(value))
    return f"{value:.2f}".rstrip("0").rstrip(".")


def _int(values: Mapping[str, str], name: str) -> int:
    return int(values[name])


def _weekday_after(values: Mapping[str, str]) -> str:
    return DAYS[(DAYS.index(values["day"]) + _int(values, "k")) % 7]


def _discounted_total(values: Mapping[str, str]) -> str:
    price, qty, percent = _int(values, "price"), _int(values, "qty"), _int(values, "percent")
    return _number(price * qty * (100 - percent) / 100)


def _apples(values: Mapping[str, str]) -> str:
    return str(_int(values, "a") + _int(values, "b") - _int(values, "c"))


def _loop_sum(values: Mapping[str, str]) -> str:
    k = _int(values, "k")
    return str(_int(values, "a") + k * (k - 1) // 2)


def _abc(values: Mapping[str, str]) -> list[int]:
    return [_int(values, "a"), _int(values, "b"), _int(values, "c")]


_DIGITS = range(1, 10)
_SMALL = range(2, 40)

# --------------------------------------------------------------------------- templates

_EMAIL_TEMPLATES = (
    # spam
    Template(
        "Subject: Congratulations {name}, you won a brand-new {product}!\n\nYou have been "
        "selected as this week's lucky winner. Click the link below within 24 hours to "
        "claim your {product} before it expires.",
        "classification",
        1,
        label="spam",
    ),
    Template(
        "Subject: URGENT: your account will be suspended\n\nDear customer, we detected "
        "unusual activity. Verify your password at http://secure-{company_slug}-login."
        "example.ru within 12 hours or lose access.",
        "classification",
        4,
        label="spam",
    ),
    Template(
        "Subject: Make ${amount} a day from home\n\nNo experience needed! Thousands are "
        "already earning ${amount} daily with this one simple trick. Reply YES to get "
        "started.",
        "classification",
        1,
        label="spam",
    ),
    Template(
        "Subject: Re: invoice overdue\n\nHello {name}, please find attached the overdue "
        "invoice. Open the attached .zip and enable macros to view the payment details.\n"
        "Regards, accounts department",
        "classification",
        5,
        label="spam",
    ),
    Template(
        "Subject: Exclusive crypto opportunity\n\nOur AI trading bot guarantees {percent}% "
        "returns every week. Send at least ${amount} in BTC today and double your money.",
        "classification",
        1,
        label="spam",
    ),
    Template(
        "Subject: You have (1) pending package\n\nYour {product} delivery is on hold due "
        "to unpaid customs fees of ${small}. Pay now: http://parcel-track.example.top",
        "classification",
        3,
        label="spam",
    ),
    Template(
        "Subject: Lowest prices on meds\n\nBuy cheap prescription pills online, no "
        "prescription required, discreet shipping worldwide. Order today and get "
        "{percent}% off.",
        "classification",
        1,
        label="spam",
    ),
    Template(
        "Subject: Dear friend\n\nI am a barrister representing a late client with no "
        "heirs. I need your help to transfer ${amount},000,000 and you will receive "
        "{percent}% of the funds.",
        "classification",
        2,
        label="spam",
    ),
    Template(
        "Subject: {name}, your gift card is waiting\n\nComplete our 30-second survey about "
        "{company} and receive a ${small} gift card. Limited offer, claim now!",
        "classification",
        2,
        label="spam",
    ),
    # not spam
    Template(
        "Subject: Meeting moved to {day}\n\nHi {name}, the project sync is moved to {day} "
        "at {time}. Same room. Let me know if that doesn't work for you.",
        "classification",
        1,
        label="not_spam",
    ),
    Template(
        "Subject: Your {company} invoice for {month}\n\nHello {name}, your invoice for "
        "{month} is available in your account dashboard. The amount of ${amount} will be "
        "charged to your card on file.",
        "classification",
        4,
        label="not_spam",
    ),
    Template(
        "Subject: Lunch?\n\nHey {name}, are you free for lunch on {day}? There's a new "
        "ramen place near the office.",
        "classification",
        1,
        label="not_spam",
    ),
    Template(
        "Subject: Code review request\n\nHi {name}, could you review my pull request for "
        "the {feature} feature before {day}? It touches the billing module so a second "
        "pair of eyes would help.",
        "classification",
        1,
        label="not_spam",
    ),
    Template(
        "Subject: Password reset requested\n\nWe received a request to reset the password "
        "for your {company} account. If this was you, use the link in the app; if not, "
        "you can ignore this email.",
        "classification",
        5,
        label="not_spam",
    ),
    Template(
        "Subject: Quarterly report draft\n\nHi team, attached is the draft of the "
        "Q{quarter} report. Please send comments to {name} by {day}.",
        "classification",
        2,
        label="not_spam",
    ),
    Template(
        "Subject: Your order has shipped\n\nGood news, {name}! Your {product} order "
        "from {company} has shipped and should arrive by {day}.",
        "classification",
        3,
        label="not_spam",
    ),
    Template(
        "Subject: Team offsite in {city}\n\nHi all, we're planning the offsite in {city} "
        "next month. Please fill in your dietary requirements by {day}.",
        "classification",
        1,
        label="not_spam",
    ),
    Template(
        "Subject: Re: contract renewal\n\nThanks {name}, legal has approved the renewal "
        "with {company}. I'll send the countersigned copy on {day}.",
        "classification",
        2,
        label="not_spam",
    ),
)

_TRIAGE_TEMPLATES = (
    Template(
        "I was charged twice for my {plan} subscription this month. Can you refund the "
        "duplicate payment of ${amount}?",
        "classification",
        2,
        label="billing",
    ),
    Template(
        "Invoice #{number} shows ${amount} but our contract says ${amount2}. Please correct it.",
        "classification",
        2,
        label="billing",
    ),
    Template(
        "How do I change the credit card used for our {plan} plan? The old one expires next month.",
        "classification",
        3,
        label="billing",
    ),
    Template(
        "We downgraded to {plan} on {day} but were still billed for the higher tier.",
        "classification",
        3,
        label="billing",
    ),
    Template(
        "I got an email saying my payment failed, but my bank shows the charge of "
        "${amount} went through. Which one is right?",
        "classification",
        5,
        label="billing",
    ),
    Template(
        "The {feature} page shows a 500 error every time I click Save. It started after "
        "today's update.",
        "classification",
        2,
        label="technical",
    ),
    Template(
        "Our API calls to /v2/{endpoint} time out after 30 seconds since {day}. Nothing "
        "changed on our side.",
        "classification",
        2,
        label="technical",
    ),
    Template(
        "The mobile app crashes on startup on my {device} after the latest update.",
        "classification",
        2,
        label="technical",
    ),
    Template(
        "Webhooks stopped arriving at our endpoint yesterday; the delivery log says "
        "'connection refused'.",
        "classification",
        3,
        label="technical",
    ),
    Template(
        "The pricing page crashes in Safari so I can't see how much the {plan} upgrade costs.",
        "classification",
        6,
        label="technical",
    ),
    Template(
        "I can't log in: the two-factor code never arrives on my new {device}. Please "
        "help me regain access.",
        "classification",
        3,
        label="account",
    ),
    Template(
        "Please change the email address on my account to {name}@{domain}.",
        "classification",
        2,
        label="account",
    ),
    Template(
        "How do I add {name} to our organization as an admin?", "classification", 2, label="account"
    ),
    Template(
        "I want to delete my account and all my personal data.",
        "classification",
        1,
        label="account",
    ),
    Template(
        "After my card was declined the app logged me out and now says my account is "
        "locked. What do I do?",
        "classification",
        6,
        label="account",
    ),
    Template(
        "Do you have an office in {city}? We'd like to visit for a partnership meeting.",
        "classification",
        2,
        label="other",
    ),
    Template(
        "Just wanted to say the new {feature} screen looks great, thanks to the team!",
        "classification",
        3,
        label="other",
    ),
    Template(
        "Are you hiring interns for the summer in {city}?", "classification", 2, label="other"
    ),
)

_MIXED_TEMPLATES = (
    # simple Q&A
    Template("What is the capital of {country}?", "qa", 1, solve=lambda v: CAPITALS[v["country"]]),
    Template(
        "What is the chemical symbol for {element}?", "qa", 1, solve=lambda v: SYMBOLS[v["element"]]
    ),
    Template(
        "Which number is larger, {a} or {b}?",
        "qa",
        1,
        solve=lambda v: str(max(_int(v, "a"), _int(v, "b"))),
        slots={"a": range(100, 999), "b": range(100, 999)},
    ),
    Template(
        "How many minutes are there in {a} hours?",
        "qa",
        2,
        solve=lambda v: str(60 * _int(v, "a")),
        slots={"a": range(2, 24)},
    ),
    # summarisation
    Template(
        'In one word, is this review positive or negative?\n\n"{review}"',
        "summarization",
        3,
        solve=lambda v: REVIEWS[v["review"]],
    ),
    Template(
        "Summarise this customer message in a few words, naming the product it is "
        'about:\n\n"Hi, I bought the {product} last week and it already stopped '
        'working. I would like a replacement."',
        "summarization",
        4,
        solve=lambda v: v["product"],
        match="contains",
    ),
    Template(
        "Give the main topic of this paragraph in one word:\n\n{paragraph}",
        "summarization",
        4,
        solve=lambda v: TOPICS[v["paragraph"]],
    ),
    # code
    Template(
        "What does this Python expression evaluate to?\n\nlen([{a}, {b}, {c}] * {k})",
        "code",
        5,
        solve=lambda v: str(3 * _int(v, "k")),
        slots={"a": _DIGITS, "b": _DIGITS, "c": _DIGITS, "k": range(2, 9)},
    ),
    Template(
        "What does this Python code print?\n\nx = {a}\nfor i in range({k}):\n    x += i\nprint(x)",
        "code",
        6,
        solve=_loop_sum,
        slots={"a": _SMALL, "k": range(3, 12)},
    ),
    Template(
        "What is the output of `print(sorted([{a}, {b}, {c}])[1])` in Python?",
        "code",
        5,
        solve=lambda v: str(sorted(_abc(v))[1]),
        slots={"a": _SMALL, "b": _SMALL, "c": _SMALL},
    ),
    Template(
        "In Python, what is the value of '{name}'[::-1].upper()?",
        "code",
        6,
        solve=lambda v: v["name"][::-1].upper(),
    ),
    Template(
        "What does this JavaScript print?\n\nconsole.log([{a}, {b}, {c}, {d}]"
        ".filter(x => x % 2 === 0).length)",
        "code",
        7,
        solve=lambda v: str(sum(_int(v, s) % 2 == 0 for s in "abcd")),
        slots={"a": _SMALL, "b": _SMALL, "c": _SMALL, "d": _SMALL},
    ),
    # maths
    Template(
        "A train travels at {speed} km/h for {hours} hours. How many kilometres does it "
        "cover? Answer with the number only.",
        "math",
        6,
        solve=lambda v: str(_int(v, "speed") * _int(v, "hours")),
        slots={"speed": range(40, 300, 5), "hours": range(2, 9)},
    ),
    Template(
        "What is {a} * {b} + {c}?",
        "math",
        6,
        solve=lambda v: str(_int(v, "a") * _int(v, "b") + _int(v, "c")),
        slots={"a": range(12, 99), "b": range(12, 99), "c": range(1, 500)},
    ),
    Template(
        "Pens cost ${price} each, with a {percent}% discount on the whole order. How much "
        "do {qty} pens cost in dollars? Answer with the number only.",
        "math",
        8,
        solve=_discounted_total,
        slots={"price": range(2, 20), "percent": range(5, 40, 5), "qty": range(10, 200)},
    ),
    Template(
        "What is the remainder when {a} is divided by {k}?",
        "math",
        6,
        solve=lambda v: str(_int(v, "a") % _int(v, "k")),
        slots={"a": range(100, 9999), "k": range(3, 30)},
    ),
    # multi-step reasoning
    Template(
        "{name} is taller than {name2}. {name2} is taller than {name3}. Who is the "
        "shortest? Answer with the name only.",
        "reasoning",
        7,
        solve=lambda v: v["name3"],
    ),
    Template(
        "If today is {day}, what day of the week will it be in {k} days? Answer with the day only.",
        "reasoning",
        7,
        solve=_weekday_after,
        slots={"k": range(3, 100)},
    ),
    Template(
        "{name} has {a} apples. {name2} gives {name} {b} more, then {name} eats {c}. How "
        "many apples does {name} have now? Answer with the number only.",
        "reasoning",
        7,
        solve=_apples,
        slots={"a": range(3, 40), "b": range(2, 30), "c": range(1, 3)},
    ),
    Template(
        "There are {a} people in a room. Each person shakes hands with every other person "
        "exactly once. How many handshakes are there? Answer with the number only.",
        "reasoning",
        9,
        solve=lambda v: str(_int(v, "a") * (_int(v, "a") - 1) // 2),
        slots={"a": range(4, 40)},
    ),
)


def _label_prompt(labels: Sequence[str], what: str) -> str:
    return (
        f"You are a {what}. Answer with exactly one label from: {', '.join(labels)}. "
        "Reply with the label only: no punctuation, no explanation."
    )


DEMO_GOALS: dict[str, DemoTask] = {
    EMAIL: DemoTask(
        slug=EMAIL,
        description="Label an email as spam or not_spam.",
        system_prompt=_label_prompt(("spam", "not_spam"), "spam filter for a company inbox"),
        labels=("spam", "not_spam"),
        templates=_EMAIL_TEMPLATES,
    ),
    TRIAGE: DemoTask(
        slug=TRIAGE,
        description="Route a support ticket to billing, technical, account or other.",
        system_prompt=_label_prompt(
            ("billing", "technical", "account", "other"), "support ticket triage assistant"
        ),
        labels=("billing", "technical", "account", "other"),
        templates=_TRIAGE_TEMPLATES,
    ),
    MIXED: DemoTask(
        slug=MIXED,
        description="A mixed workload: simple questions, summaries, code, maths, reasoning.",
        system_prompt=(
            "You are a precise assistant. Answer with the final answer only (a word, a name "
            "or a number), without explanation."
        ),
        labels=(),
        templates=_MIXED_TEMPLATES,
    ),
}

# Fallback when a text matches no template (an operator typing their own email into the
# playground): first label whose cue occurs wins, else the last label.
KEYWORDS: dict[str, tuple[tuple[str, tuple[str, ...]], ...]] = {
    EMAIL: (
        (
            "spam",
            (
                "winner",
                "you won",
                "claim",
                "click the link",
                "free",
                "guarantee",
                "crypto",
                "bitcoin",
                "btc",
                "lottery",
                "prize",
                "no prescription",
                "act now",
                "limited offer",
                "verify your password",
                "enable macros",
                "gift card",
            ),
        ),
        ("not_spam", ()),
    ),
    TRIAGE: (
        (
            "billing",
            (
                "invoice",
                "charged",
                "charge",
                "refund",
                "billing",
                "billed",
                "payment",
                "credit card",
                "subscription",
                "price",
                "vat",
            ),
        ),
        (
            "account",
            (
                "log in",
                "login",
                "password",
                "two-factor",
                "2fa",
                "email address",
                "delete my account",
                "admin",
                "locked",
                "username",
                "sign in",
            ),
        ),
        (
            "technical",
            (
                "error",
                "crash",
                "bug",
                "api",
                "timeout",
                "time out",
                "webhook",
                "broken",
                "not working",
                "slow",
                "500",
            ),
        ),
        ("other", ()),
    ),
}


# --------------------------------------------------------------------------- rendering


def _pool_of(template: Template, slot: str) -> Sequence[str] | range:
    if slot in template.slots:
        return template.slots[slot]
    base = slot.rstrip("0123456789")
    if base in POOLS:
        return POOLS[base]
    raise KeyError(f"no values for slot {slot!r}")


_SLOT = re.compile(r"\{([a-z_]+[0-9]*)\}")


def _randbelow(rng: Rng, n: int) -> int:
    if hasattr(rng, "integers"):
        return int(rng.integers(0, n))
    return rng.randrange(n)


def _draw(template: Template, rng: Rng) -> dict[str, str]:
    values: dict[str, str] = {}
    used: dict[int, set[str]] = {}
    for slot in dict.fromkeys(_SLOT.findall(template.text)):
        pool = _pool_of(template, slot)
        taken = used.setdefault(id(pool), set())
        # Slots sharing a pool get distinct values ("{name} is taller than {name2}").
        for _ in range(20):
            value = str(pool[_randbelow(rng, len(pool))])
            if value not in taken:
                break
        taken.add(value)
        values[slot] = value
    return values


def _render(template: Template, values: Mapping[str, str]) -> str:
    return _SLOT.sub(lambda m: values[m.group(1)], template.text)


def _regex(template: Template) -> re.Pattern[str]:
    parts: list[str] = []
    seen: set[str] = set()
    position = 0
    for found in _SLOT.finditer(template.text):
        parts.append(re.escape(template.text[position : found.start()]))
        slot = found.group(1)
        if slot in seen:
            parts.append(f"(?P={slot})")
        else:
            seen.add(slot)
            pool = _pool_of(template, slot)
            if isinstance(pool, range):
                pattern = r"-?\d+"
            else:
                pattern = "|".join(re.escape(v) for v in sorted(pool, key=len, reverse=True))
            parts.append(f"(?P<{slot}>{pattern})")
        position = found.end()
    parts.append(re.escape(template.text[position:]))
    return re.compile("".join(parts))


_COMPILED: tuple[tuple[str, Template, re.Pattern[str]], ...] = tuple(
    (task.slug, template, _regex(template))
    for task in DEMO_GOALS.values()
    for template in task.templates
)


def _task(goal_slug: str) -> DemoTask:
    try:
        return DEMO_GOALS[goal_slug]
    except KeyError:
        raise ValueError(f"unknown demo goal {goal_slug!r}; known: {sorted(DEMO_GOALS)}") from None


def system_prompt(goal_slug: str) -> str:
    return _task(goal_slug).system_prompt


def labels(goal_slug: str) -> tuple[str, ...]:
    return _task(goal_slug).labels


def sample_prompts(goal_slug: str, rng: Rng, n: int) -> list[DemoPrompt]:
    """`n` prompts for a goal, templates drawn uniformly, slots filled at random from `rng`."""
    task = _task(goal_slug)
    prompts = []
    for _ in range(n):
        template = task.templates[_randbelow(rng, len(task.templates))]
        values = _draw(template, rng)
        prompts.append(
            DemoPrompt(
                goal=task.slug,
                messages=[{"role": "user", "content": _render(template, values)}],
                gold=template.gold(values),
                task_type=template.task_type,
                complexity_hint=template.complexity,
                match=template.match,
            )
        )
    return prompts


def _template_match(text: str) -> tuple[str, Template, dict[str, str]] | None:
    stripped = text.strip()
    for goal, template, pattern in _COMPILED:
        found = pattern.fullmatch(stripped)
        if found:
            return goal, template, found.groupdict()
    return None


def _keyword_label(goal_slug: str, text: str) -> str | None:
    table = KEYWORDS.get(goal_slug)
    if not table:
        return None
    lowered = text.lower()
    for label, cues in table:
        if any(cue in lowered for cue in cues):
            return label
    return table[-1][0]


def gold_label(text: str, goal_slug: str | None = None) -> str | None:
    """The right answer for a demo prompt's text: exact from its template, else (when the
    goal is named and has labels) from the keyword table; None when unknown.

    >>> gold_label("What is the capital of France?")
    'Paris'
    >>> gold_label("Refund me, I was charged twice", "support_ticket_triage")
    'billing'
    """
    matched = _template_match(text)
    if matched is not None and (goal_slug is None or matched[0] == goal_slug):
        _, template, values = matched
        return template.gold(values)
    return _keyword_label(goal_slug, text) if goal_slug else None


def _normalise(answer: str) -> str:
    return answer.strip().strip("`'\"").rstrip(".").strip().lower()


def _as_float(text: str) -> float | None:
    try:
        return float(text.replace(",", "").lstrip("$"))
    except ValueError:
        return None


def is_correct(prompt: DemoPrompt, answer: str) -> bool:
    """Grade an answer against the prompt's gold. Labels must be the label alone (case and
    surrounding quotes/whitespace forgiven); free-form answers compare numbers by value."""
    got, gold = _normalise(answer), prompt.gold.lower()
    if prompt.match == "contains":
        return gold in got
    if got == gold:
        return True
    got_number, gold_number = _as_float(got), _as_float(gold)
    if got_number is None or gold_number is None:
        return False
    return abs(got_number - gold_number) < 1e-6


def _alternatives(gold: str, labels: tuple[str, ...], values: Mapping[str, str]) -> tuple[str, ...]:
    if labels:
        return tuple(label for label in labels if label != gold)
    number = _as_float(gold)
    if number is not None:
        return tuple(_number(x) for x in (number + 1, number - 1, number * 2, number + 10))
    for pool in ANSWER_POOLS:
        if gold in pool:
            return tuple(value for value in pool if value != gold)
    others = tuple(value for value in values.values() if value != gold)
    return others or ("I am not sure.",)


def _goal_from_system(messages: Sequence[Mapping[str, Any]]) -> str | None:
    for message in messages:
        if message.get("role") in ("system", "developer"):
            content = str(message.get("content") or "")
            for task in DEMO_GOALS.values():
                if task.system_prompt in content:
                    return task.slug
    return None


def _last_user_text(messages: Sequence[Mapping[str, Any]]) -> str:
    for message in reversed(messages):
        if message.get("role") == "user" and isinstance(message.get("content"), str):
            return str(message["content"])
    return ""


def recognise(messages: Sequence[Mapping[str, Any]]) -> DemoMatch | None:
    """Does this conversation look like a demo prompt? Matched by template (exact gold), or by
    a demo goal's system prompt (keyword gold for label goals). None for anything else."""
    text = _last_user_text(messages)
    system_goal = _goal_from_system(messages)
    matched = _template_match(text)
    if matched is not None:
        goal, template, values = matched
        task = DEMO_GOALS[goal]
        gold = template.gold(values)
        return DemoMatch(
            goal=goal,
            gold=gold,
            task_type=template.task_type,
            complexity=template.complexity,
            labels=task.labels,
            alternatives=_alternatives(gold, task.labels, values),
        )
    if system_goal is None:
        return None
    task = DEMO_GOALS[system_goal]
    gold_or_none = _keyword_label(system_goal, text)
    return DemoMatch(
        goal=system_goal,
        gold=gold_or_none,
        task_type="classification" if task.labels else "general",
        complexity=min(10, 2 + len(text) // 400),
        labels=task.labels,
        alternatives=_alternatives(gold_or_none, task.labels, {}) if gold_or_none else (),
    )
