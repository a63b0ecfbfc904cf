"""Reference values for medtune's metrics on randomized inputs (seeded), printed as JSON.

Real packages where the local index has them: sacrebleu (corpus BLEU, defaults) and scikit-learn
(roc_auc_score, f1_score, accuracy_score). pycocoevalcap and rouge-score are not in the index, so
BLEU (coco variant), ROUGE-L and CIDEr-D below are small independent implementations written from
the published definitions (Papineni et al. 2002 with coco-caption's tiny/small constants; Lin 2004
LCS F-measure with coco-caption's beta 1.2, and rouge-score's F1 with its default tokenizer;
Vedantam et al. 2015 CIDEr-D as coco-caption computes it). They are independent of medtune's
TypeScript and share no code with it.

usage: ref_metrics.py SEED
"""
import json
import math
import random
import re
import sys
import warnings
from collections import Counter, defaultdict

import numpy as np
import sacrebleu
from sklearn.metrics import accuracy_score, f1_score, roc_auc_score

VOCAB = ("the heart size is normal lungs are clear no pleural effusion or pneumothorax mild cardiomegaly "
         "left lower lobe opacity consistent with atelectasis right . , - 3.5 cm stable unchanged since prior "
         "exam there small bilateral").split()


def sentence(rng, lo=0, hi=25):
    words = [rng.choice(VOCAB) for _ in range(rng.randint(lo, hi))]
    text = " ".join(words)
    # Some glued punctuation so sacreBLEU's 13a tokenizer has work to do.
    return re.sub(r" ([.,])", r"\1", text) if rng.random() < 0.5 else text


def ngrams(words, n):
    return Counter(tuple(words[i:i + n]) for i in range(len(words) - n + 1))


def coco_bleu(hyps, refs, max_n=4):
    tiny, small = 1e-15, 1e-9
    correct = [0] * max_n
    guess = [0] * max_n
    hyp_len = ref_len = 0
    for h, rs in zip(hyps, refs):
        hw = h.split()
        rws = [r.split() for r in rs]
        hyp_len += len(hw)
        ref_len += min((abs(len(r) - len(hw)), len(r)) for r in rws)[1]
        for n in range(1, max_n + 1):
            hc = ngrams(hw, n)
            maxref = Counter()
            for r in rws:
                for g, c in ngrams(r, n).items():
                    maxref[g] = max(maxref[g], c)
            guess[n - 1] += max(len(hw) - n + 1, 0)
            correct[n - 1] += sum(min(c, maxref[g]) for g, c in hc.items())
    out = []
    prod = 1.0
    ratio = (hyp_len + tiny) / (ref_len + small)
    for k in range(max_n):
        prod *= (correct[k] + tiny) / (guess[k] + small)
        b = prod ** (1.0 / (k + 1))
        if ratio < 1:
            b *= math.exp(1 - 1 / ratio)
        out.append(b)
    return out


def lcs(a, b):
    table = [[0] * (len(b) + 1) for _ in range(len(a) + 1)]
    for i in range(1, len(a) + 1):
        for j in range(1, len(b) + 1):
            table[i][j] = table[i - 1][j - 1] + 1 if a[i - 1] == b[j - 1] else max(table[i - 1][j], table[i][j - 1])
    return table[len(a)][len(b)]


def coco_rouge_l(hyps, refs, beta=1.2):
    scores = []
    for h, rs in zip(hyps, refs):
        hw = h.split()
        precs, recs = [], []
        for r in rs:
            rw = r.split()
            l = lcs(rw, hw)
            precs.append(l / len(hw) if hw else 0.0)
            recs.append(l / len(rw) if rw else 0.0)
        p, r = max(precs), max(recs)
        scores.append(((1 + beta ** 2) * p * r) / (r + beta ** 2 * p) if p > 0 and r > 0 else 0.0)
    return sum(scores) / len(scores)


def rouge_score_l(hyps, refs):
    tok = lambda s: re.sub(r"[^a-z0-9]+", " ", s.lower()).split()
    out = []
    for h, rs in zip(hyps, refs):
        hw, rw = tok(h), tok(rs[0])
        if not hw or not rw:
            out.append(0.0)
            continue
        l = lcs(rw, hw)
        p, r = l / len(hw), l / len(rw)
        out.append(2 * p * r / (p + r) if p + r > 0 else 0.0)
    return sum(out) / len(out)


def cider_d(hyps, refs, n=4, sigma=6.0):
    def cook(s):
        w = s.split()
        c = Counter()
        for k in range(1, n + 1):
            c.update(ngrams(w, k))
        return c
    crefs = [[cook(r) for r in rs] for rs in refs]
    ctest = [cook(h) for h in hyps]
    df = defaultdict(float)
    for rs in crefs:
        for g in set(g for r in rs for g in r):
            df[g] += 1
    log_n = np.log(float(len(crefs)))

    def vec(cnts):
        v = [defaultdict(float) for _ in range(n)]
        norm = [0.0] * n
        length = 0
        for g, tf in cnts.items():
            k = len(g) - 1
            v[k][g] = float(tf) * (log_n - np.log(max(1.0, df[g])))
            norm[k] += v[k][g] ** 2
            if k == 1:
                length += tf
        return v, [np.sqrt(x) for x in norm], length

    scores = []
    for t, rs in zip(ctest, crefs):
        vh, nh, lh = vec(t)
        acc = np.zeros(n)
        for r in rs:
            vr, nr, lr = vec(r)
            delta = float(lh - lr)
            for k in range(n):
                val = sum(min(vh[k][g], vr[k][g]) * vr[k][g] for g in vh[k])
                if nh[k] != 0 and nr[k] != 0:
                    val /= nh[k] * nr[k]
                acc[k] += val * np.e ** (-(delta ** 2) / (2 * sigma ** 2))
        scores.append(np.mean(acc) / len(rs) * 10.0)
    return float(np.mean(scores))


def text_case(rng):
    count = rng.randint(1, 30)
    hyps = [sentence(rng) for _ in range(count)]
    refs = [sentence(rng, 1) for _ in range(count)]
    # Some near copies so higher-order n-grams match.
    for i in range(count):
        if rng.random() < 0.4:
            words = refs[i].split()
            if words:
                drop = rng.randrange(len(words))
                hyps[i] = " ".join(words[:drop] + words[drop + 1:])
    return {
        "hyps": hyps,
        "refs": refs,
        "sacrebleu": [sacrebleu.metrics.BLEU(max_ngram_order=k).corpus_score(hyps, [refs]).score for k in (1, 2, 3, 4)],
        "coco_bleu": coco_bleu(hyps, [[r] for r in refs]),
        "coco_rouge_l": coco_rouge_l(hyps, [[r] for r in refs]),
        "rouge_l_f1": rouge_score_l(hyps, [[r] for r in refs]),
        "cider_d": cider_d(hyps, [[r] for r in refs]),
    }


def classify_case(rng):
    n = rng.randint(2, 60)
    labels = rng.randint(1, 6)
    # Scores rounded to a few levels so ties are common; some labels get a single class.
    levels = rng.choice([3, 10, 1000])
    y = [[rng.random() < rng.choice([0.0, 0.3, 0.5, 1.0]) for _ in range(labels)] for _ in range(n)]
    y = [[int(v) for v in row] for row in y]
    s = [[round(rng.random() * levels) / levels for _ in range(labels)] for _ in range(n)]
    yt = np.array(y)
    st = np.array(s)
    per_label = []
    for j in range(labels):
        # scikit-learn 1.9 warns and returns NaN for a label with one class (older versions raise).
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                v = float(roc_auc_score(yt[:, j], st[:, j]))
            except ValueError:
                v = float("nan")
        per_label.append(None if math.isnan(v) else v)
    pred = (st >= 0.5).astype(int)
    return {
        "labels": y,
        "scores": s,
        "auroc": per_label,
        "f1": [float(f1_score(yt[:, j], pred[:, j], zero_division=0)) for j in range(labels)],
        "accuracy": [float(accuracy_score(yt[:, j], pred[:, j])) for j in range(labels)],
    }


def main():
    seed = int(sys.argv[1]) if len(sys.argv) > 1 else 0
    rng = random.Random(seed)
    print(json.dumps({
        "text": [text_case(rng) for _ in range(25)],
        "classify": [classify_case(rng) for _ in range(60)],
    }))


if __name__ == "__main__":
    main()
