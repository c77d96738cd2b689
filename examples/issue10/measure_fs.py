"""Item 4: pgd-linf-relaxed on all 1,000 mnist5k points vs bench's committed feature_squeezing results."""
import torch, time, sys, json
torch.set_num_threads(1)
from load import load
from bench.attacks.quantized import RelaxedPGD
from bench.attacks.battery import PlannedAttack, run_attack, detector_rate
from bench.perf import fast_layout
m, data, df = load('feature_squeezing', '037088044007'); m = fast_layout(m)
x, y = data.x_test, data.y_test
clean = torch.tensor(df.clean_correct.values); bench_robust = torch.tensor(df.robust.values)
settings = {
    "cheap": dict(steps=50, restarts=1, surfaces=("reachable",)),
    "default": dict(steps=50, restarts=2),
    "strong": dict(steps=100, restarts=5, evade_steps=100),
    "reachable3x100": dict(steps=100, restarts=3, surfaces=("reachable",), evade_steps=100),
}
res = json.load(open("/tmp/adaptive/out/fs.json")) if len(sys.argv) > 2 else {}
res.update({"bench_robust_accuracy": float(bench_robust.float().mean()), "clean_accuracy": float(clean.float().mean()),
       "detector_false_positive_rate_clean_test": detector_rate(m, x)})
for label in sys.argv[1].split(","):
    attack = RelaxedPGD(**settings[label])
    t = time.perf_counter()
    out = run_attack(PlannedAttack(attack, 0.3), m, x, y, seed=0, batch_size=1000)
    sec = time.perf_counter() - t
    ours = out.correct
    res[label] = {"params": attack.params(), "seconds": round(sec, 1), "own_accuracy": out.accuracy,
                  "own_robust_accuracy": float((clean & ours).float().mean()),
                  "broken_among_bench_robust": int((bench_robust & ~ours).sum()),
                  "bench_broken_but_ours_robust": int((clean & ~bench_robust & ours).sum()),
                  "worst_case_robust_accuracy": float((bench_robust & ours).float().mean()),
                  "first300": {"bench": float(bench_robust[:300].float().mean()), "worst": float((bench_robust & ours)[:300].float().mean())},
                  "stats": attack.stats}
    torch.save(ours, f"/tmp/adaptive/out/fs-{label}.pt")
    print(label, res[label], flush=True)
    json.dump(res, open("/tmp/adaptive/out/fs.json", "w"), indent=1)
