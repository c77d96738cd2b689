"""Item 1 (revised order): APGD-CE / APGD-T vs bench's committed worst case, on all 1,000 points."""
import torch, time, sys, json, os
torch.set_num_threads(1)
from load import load
from bench.attacks.apgd import APGD, APGDTargeted
from bench.attacks.gradient import PGD
from bench.attacks.battery import PlannedAttack, run_attack
from bench.perf import fast_layout
name, h = sys.argv[1], sys.argv[2]
m, data, df = load(name, h); m = fast_layout(m)
x, y = data.x_test, data.y_test
clean = torch.tensor(df.clean_correct.values); bench_robust = torch.tensor(df.robust.values)
path = f"/tmp/adaptive/out/{name}-apgd.json"
res = json.load(open(path)) if os.path.exists(path) else {}
res.update({"model": f"{name}-{h}", "threads": 1, "bench_robust": int(bench_robust.sum()), "clean": int(clean.sum())})
def run(attack, mask, label):
    f = f"/tmp/adaptive/out/{name}-{label}.pt"
    if os.path.exists(f) and label in res:
        return torch.load(f)
    pos = mask.nonzero().squeeze(1)
    t = time.perf_counter()
    out = run_attack(PlannedAttack(attack, 0.3), m, x[pos], y[pos], seed=0, batch_size=500, indices=pos.tolist())
    sec = time.perf_counter() - t
    survive = mask.clone(); survive[pos] = out.correct
    res[label] = {"params": attack.params(), "n": len(pos), "seconds": round(sec, 1), "broken": int((mask & ~survive).sum()),
                  "broken_among_bench_robust": int((bench_robust & ~survive).sum()),
                  "broken_among_bench_robust_first200": int((bench_robust & ~survive)[:200].sum()), "warnings": out.warnings}
    print(label, res[label], flush=True)
    torch.save(survive, f)
    json.dump(res, open(path, "w"), indent=1)
    return survive
first200 = torch.zeros(1000, dtype=torch.bool); first200[:200] = True
run(PGD(steps=40), clean, "ref-pgd40")
a = run(APGD(n_iter=100), clean, "ce100")
b = run(APGDTargeted(n_iter=100, n_target_classes=3), a, "ce100+t100x3")
res["worst_bench_ce100_t100x3"] = float((bench_robust & b).float().mean())
c = run(APGD(n_iter=50), clean, "ce50")
d = run(APGDTargeted(n_iter=50, n_target_classes=3), c, "ce50+t50x3")
res["worst_bench_ce50_t50x3"] = float((bench_robust & d).float().mean())
e = run(APGDTargeted(n_iter=100, n_target_classes=9), b & first200, "ce100+t100x3+t100x9-first200")
json.dump(res, open(path, "w"), indent=1)
print(json.dumps(res), flush=True)
