"""The gate's paired words rule: does the model read fewer words than the baselines, with a stated confidence?

The per-page words rule (``word F1 model >= max(bicubic, Lanczos) - 0.005`` on every page) trips on a single word:
on a held-out page of about 70 words one word is about 0.014 of word F1, three times the margin, and one word
either way is what an OCR engine's jitter looks like. This rule pools the evidence of all gate pages instead and
says how sure it is.

Units. Each ground-truth word occurrence of each page is one pair: the model's reading found it or not, and the
page's best baseline found it or not (the better of bicubic and Lanczos on that page by word F1, Lanczos on a tie,
as the per-page rule compares against). Pairs where both agree say nothing; of the discordant ones, a *loss* is a
word the baseline found and the model missed, a *win* the reverse. Words read that match no ground-truth word
beyond the words missed (``inserted``: a reading's extra words minus its missed ones, at least 0; a misread word is
one miss and one extra and counts once, as the miss) are hallucinations: per page, the model's inserted words above
the baseline's add to the losses, below it to the wins, so a model that invents words cannot pass by finding all
the real ones.

Rule. Exact one-sided sign test (McNemar's exact test) on the discordant units: under "the model reads as well as
the baseline" a discordant unit is a loss with probability 1/2, and p = P(X >= losses) for X ~ Binomial(losses +
wins, 1/2). The rule fails when p < 1 - ``WORDS_CONFIDENCE``: the model reads worse with that confidence. It also
fails, with no confidence allowance, when the model's pooled word F1 over all pages (2 x words found / (words read
+ ground-truth words), summed over pages) is below Lanczos's: the default must never read worse than Lanczos.

Rows need the word evidence (``found_<variant>[_<engine>]``, ``extra_<variant>[_<engine>]``, written by
:func:`srgan.fidelity.gate.measure_page` since 2026-12-08); rows without it cannot be judged (``judged`` false),
and the gate then keeps the per-page rule.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

from srgan.fidelity.ocr import field_name

# One-sided confidence that the model reads worse before the gate fails it: the usual 95%. On the 12 held-out
# pages (~1,000 words) a model that consistently loses one word in a hundred more than the baseline fails
# (about 10 losses against 0-2 wins), while one or two words either way, the jitter of one reader, do not.
WORDS_CONFIDENCE = 0.95
BASELINES = ("bicubic", "lanczos")
VARIANTS = ("model", *BASELINES)
TEST_NAME = "exact one-sided sign test (McNemar) over ground-truth words, all pages"


@dataclass
class WordsTest:
    """The paired words rule's result for one engine over a set of rows.

    judged false: some row lacks word evidence (``unjudged_pages``) and nothing else is filled in. losses / wins:
    discordant units against the per-page best baseline (of them ``inserted_losses`` / ``inserted_wins`` from
    inserted words); p_value: P(X >= losses), X ~ Binomial(losses + wins, 1/2); pooled_f1: per variant.
    """

    engine: str
    judged: bool
    confidence: float = WORDS_CONFIDENCE
    test: str = TEST_NAME
    pages: int = 0
    words: int = 0
    losses: int = 0
    wins: int = 0
    inserted_losses: int = 0
    inserted_wins: int = 0
    p_value: float = 1.0
    pooled_f1: dict | None = None
    worse_with_confidence: bool = False
    below_lanczos: bool = False
    unjudged_pages: list | None = None

    @property
    def passed(self) -> bool:
        return self.judged and not self.worse_with_confidence and not self.below_lanczos

    def summary(self) -> str:
        """One line: the test, the counts, the p-value, the confidence and the pooled word F1s."""
        if not self.judged:
            missing = self.unjudged_pages or []
            named = ", ".join(missing[:4]) + (f" and {len(missing) - 4} more" if len(missing) > 4 else "")
            return (f"{self.engine} paired words rule cannot judge: no word evidence on {len(missing)} of "
                    f"{self.pages} pages ({named}; rows stored before 2026-12-08)")
        f1 = self.pooled_f1 or {}
        return (f"{self.engine} {self.test}: {self.losses} words lost against the best baseline, {self.wins} won "
                f"(of them inserted {self.inserted_losses} / {self.inserted_wins}), {self.words} words on "
                f"{self.pages} pages, one-sided p = {self.p_value:.3g} (fails below {1 - self.confidence:.2f}, "
                f"confidence {self.confidence:.0%}); pooled word F1 model {f1['model']:.4f}, Lanczos "
                f"{f1['lanczos']:.4f}, bicubic {f1['bicubic']:.4f}")

    def to_dict(self) -> dict:
        return {**asdict(self), "passed": self.passed, "summary": self.summary()}


def sign_test_p(losses: int, wins: int) -> float:
    """Exact one-sided sign test: P(X >= losses) for X ~ Binomial(losses + wins, 1/2); 1.0 with no discordant unit."""
    n = losses + wins
    return sum(math.comb(n, k) for k in range(losses, n + 1)) / 2 ** n if n else 1.0


def has_word_evidence(row: dict, engine: str) -> bool:
    """Whether a row keeps the word evidence of the model, bicubic and Lanczos readings by engine."""
    return all(field_name(m, v, engine) in row for m in ("found", "extra") for v in VARIANTS)


def best_baseline(row: dict, engine: str) -> str:
    """The page's better baseline by word F1 (``lanczos`` on a tie), the one the per-page rule compares against."""
    f1 = {b: row[field_name("f1", b, engine)] for b in BASELINES}
    return "bicubic" if f1["bicubic"] > f1["lanczos"] else "lanczos"


def inserted(row: dict, variant: str, engine: str) -> int:
    """Words read beyond the ground truth that replace no missed word (extra words minus missed ones, >= 0)."""
    found = row[field_name("found", variant, engine)]
    return max(0, row[field_name("extra", variant, engine)] - found.count("0"))


def page_units(row: dict, engine: str) -> tuple[int, int, int, int]:
    """(losses, wins, inserted losses, inserted wins) of the model against the page's best baseline."""
    base = best_baseline(row, engine)
    model, other = row[field_name("found", "model", engine)], row[field_name("found", base, engine)]
    if len(model) != len(other):
        raise ValueError(f"page {row['page']}: word evidence of model ({len(model)} words) and {base} "
                         f"({len(other)}) differ in length: not read against the same ground truth")
    losses = sum(m == "0" and b == "1" for m, b in zip(model, other, strict=True))
    wins = sum(m == "1" and b == "0" for m, b in zip(model, other, strict=True))
    surplus = inserted(row, "model", engine) - inserted(row, base, engine)
    return losses + max(surplus, 0), wins + max(-surplus, 0), max(surplus, 0), max(-surplus, 0)


def pooled_f1(rows: Sequence[dict], variant: str, engine: str) -> float:
    """Word F1 over all rows' words together: 2 x found / (words read + ground-truth words)."""
    found = sum(r[field_name("found", variant, engine)].count("1") for r in rows)
    truth = sum(len(r[field_name("found", variant, engine)]) for r in rows)
    read = found + sum(r[field_name("extra", variant, engine)] for r in rows)
    return 1.0 if read + truth == 0 else 2 * found / (read + truth)


def paired_words_test(rows: Sequence[dict], engine: str, confidence: float = WORDS_CONFIDENCE) -> WordsTest:
    """The paired words rule over all rows (the gate's pages) for one engine."""
    missing = [r["page"] for r in rows if not has_word_evidence(r, engine)]
    if missing or not rows:
        return WordsTest(engine, judged=False, confidence=confidence, pages=len(rows), unjudged_pages=missing)
    units = [page_units(r, engine) for r in rows]
    losses, wins, ins_losses, ins_wins = (sum(u[i] for u in units) for i in range(4))
    p = sign_test_p(losses, wins)
    f1 = {v: pooled_f1(rows, v, engine) for v in VARIANTS}
    return WordsTest(engine, judged=True, confidence=confidence, pages=len(rows),
                     words=sum(len(r[field_name("found", "model", engine)]) for r in rows),
                     losses=losses, wins=wins, inserted_losses=ins_losses, inserted_wins=ins_wins,
                     p_value=p, pooled_f1={v: round(x, 6) for v, x in f1.items()},
                     worse_with_confidence=p < 1 - confidence, below_lanczos=f1["model"] < f1["lanczos"])
