import torch, pandas as pd
from bench.data import load_dataset
from bench.registry import create_defense
from bench.zoo import ModelZoo
from pathlib import Path
def load(name, hash_):
    data = load_dataset("mnist5k")
    d = create_defense(name)
    entry = ModelZoo(Path("models")).load(d, data, torch.device("cpu"))
    assert entry is not None
    df = pd.read_csv(f"results/mnist5k-{name}-{hash_}-s0/per_sample.csv")
    return entry.model, data, df
