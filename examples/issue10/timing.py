"""Per point-iteration cost of each attack relative to a PGD step, interleaved on one subset (noisy machine)."""
import torch, time, sys, json
torch.set_num_threads(1)
from load import load
from bench.attacks.apgd import APGD, APGDTargeted
from bench.attacks.gradient import PGD
from bench.attacks.quantized import RelaxedPGD
from bench.perf import fast_layout
name, h, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
m, data, df = load(name, h); m = fast_layout(m)
rob = torch.tensor(df.robust.values).nonzero().squeeze(1)[:n]   # points that survive: worst case cost
x, y = fast_layout(data.x_test[rob]), data.y_test[rob]
def t(a):
    torch.manual_seed(0); s = time.perf_counter(); a.perturb(m, x, y, eps=0.3); return time.perf_counter() - s
attacks = {"pgd40": PGD(steps=40, early_stop=False), "apgd-ce100": APGD(n_iter=100), "apgd-t100x1": APGDTargeted(n_iter=100, n_target_classes=1)}
if len(sys.argv) > 4:
    attacks = {"pgd40": PGD(steps=40, early_stop=False), "relaxed-cheap": RelaxedPGD(steps=50, restarts=1, surfaces=("reachable",)),
               "relaxed-default": RelaxedPGD(steps=50, restarts=2)}
out = {k: [] for k in attacks}
for rep in range(3):
    for k, a in attacks.items():
        out[k].append(round(t(a), 2))
    print(rep, out, flush=True)
ref = sum(out["pgd40"]) / len(out["pgd40"]) / 40
print(json.dumps({"points": len(x), "per_pgd_step_s": ref, "ratio_to_one_pgd_step": {k: round(sum(v) / len(v) / ref, 1) for k, v in out.items()}}))
