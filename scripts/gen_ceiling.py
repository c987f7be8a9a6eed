#!/usr/bin/env python3
"""gen_ceiling.py — the best achievable task scores on a generated log, from the oracle file of
`seqrec generate --funnel realistic --oracle FILE` (docs/generator.md, "The oracle").

   scripts/gen_ceiling.py ORACLE [--click NAMES] [--buy NAMES] [--json]

The samples are those `seqrec eval` scores under leave-one-out: each user's last event, for
users with at least 3 events (src/data/split.c). Labels as in docs/multitask.md: click = the
behaviour is click-level (by default every behaviour but an exposure, i.e. every one but the
first when none is named view, pv, impression, show, expose or browse), buy = the behaviour is a
purchase (by default named buy, purchase, order, pay or checkout). Scores: p(click) = the sum of
the oracle's p over the click-level behaviours, p(buy) = over the purchase behaviours; the
next-behaviour prediction is the most probable behaviour (the first on ties). AUC counts ties as
one half; macro-F1 averages F1 over the behaviours that occur as label or prediction. The
majority figures answer the commonest behaviour of the samples every time.
"""
import json
import sys

EXPOSURE = {"view", "pv", "impression", "show", "expose", "browse"}
PURCHASE = {"buy", "purchase", "order", "pay", "checkout"}


def auc(scores, labels):
    """AUC with ties counted one half; None without both classes."""
    pairs = sorted(zip(scores, labels))
    pos = sum(labels)
    neg = len(labels) - pos
    if not pos or not neg:
        return None
    area, neg_below, i = 0.0, 0, 0
    while i < len(pairs):
        j = i
        gp = gn = 0
        while j < len(pairs) and pairs[j][0] == pairs[i][0]:
            gp += pairs[j][1]
            gn += 1 - pairs[j][1]
            j += 1
        area += gp * (neg_below + 0.5 * gn)
        neg_below += gn
        i = j
    return area / (pos * neg)


def macro_f1(pred, true, n):
    """Mean F1 over the classes that occur as label or prediction (src/eval/tasks_eval.c)."""
    f1 = []
    for k in range(n):
        tp = sum(a == k and b == k for a, b in zip(pred, true))
        fp = sum(a == k and b != k for a, b in zip(pred, true))
        fn = sum(a != k and b == k for a, b in zip(pred, true))
        if tp + fp + fn:
            f1.append(2 * tp / (2 * tp + fp + fn))
    return sum(f1) / len(f1) if f1 else None


def ceiling(lines, click=None, buy=None):
    """The figures from the oracle file's lines (header first)."""
    head = lines[0].rstrip("\n").split("\t")
    if head[:3] != ["user", "item", "behaviour"] or not all(h.startswith("p_") for h in head[3:]):
        raise ValueError("line 1: not an oracle header (user, item, behaviour, p_<name>...)")
    names = [h[2:] for h in head[3:]]
    if click is None:
        click = [n for n in names if n.lower() not in EXPOSURE]
        if len(click) == len(names):
            click = names[1:]
    if buy is None:
        buy = [n for n in names if n.lower() in PURCHASE]
    for n in click + buy:
        if n not in names:
            raise ValueError(f"behaviour {n!r} is not in the oracle header")
    ci = [names.index(n) for n in click]
    bi = [names.index(n) for n in buy]
    last, count = {}, {}
    for ln, line in enumerate(lines[1:], start=2):
        f = line.rstrip("\n").split("\t")
        if len(f) != 3 + len(names) or f[2] not in names:
            raise ValueError(f"line {ln}: expected user, item, one of {names} and {len(names)} probabilities")
        count[f[0]] = count.get(f[0], 0) + 1
        last[f[0]] = (names.index(f[2]), [float(x) for x in f[3:]])
    samples = [last[u] for u in last if count[u] >= 3]
    out = {"n": len(samples), "click_behaviours": click, "buy_behaviours": buy}
    out["click_auc"] = auc([sum(p[i] for i in ci) for _, p in samples],
                           [int(b in ci) for b, _ in samples])
    out["buy_auc"] = auc([sum(p[i] for i in bi) for _, p in samples],
                         [int(b in bi) for b, _ in samples])
    pred = [max(range(len(names)), key=lambda k: (p[k], -k)) for _, p in samples]
    true = [b for b, _ in samples]
    out["next_behaviour_accuracy"] = sum(a == b for a, b in zip(pred, true)) / len(true) if true else None
    out["next_behaviour_macro_f1"] = macro_f1(pred, true, len(names))
    major = max(range(len(names)), key=lambda k: (true.count(k), -k))
    out["majority_accuracy"] = true.count(major) / len(true) if true else None
    out["majority_macro_f1"] = macro_f1([major] * len(true), true, len(names))
    return out


def main(argv):
    args, click, buy, as_json = [], None, None, False
    it = iter(argv)
    for a in it:
        if a == "--click":
            click = next(it).split(",")
        elif a == "--buy":
            buy = next(it).split(",")
        elif a == "--json":
            as_json = True
        elif a in ("-h", "--help"):
            print(__doc__)
            return 0
        else:
            args.append(a)
    if len(args) != 1:
        print("usage: gen_ceiling.py ORACLE [--click NAMES] [--buy NAMES] [--json]", file=sys.stderr)
        return 2
    try:
        with open(args[0]) as f:
            r = ceiling(f.readlines(), click, buy)
    except (OSError, ValueError) as e:
        print(f"gen_ceiling.py: {args[0]}: {e}", file=sys.stderr)
        return 1
    if as_json:
        print(json.dumps(r))
    else:
        for k, v in r.items():
            print(f"{k}: {v}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
