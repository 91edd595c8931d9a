"""Golden file for the Fréchet distance: two sets of feature rows and their distance as
pytorch-fid and clean-fid compute it (scipy.linalg.sqrtm of the covariance product,
real part), in float64 from the float32 rows.

Run from the repo root:  python Tests/Reference/frechet_distance.py
Writes Tests/ViTTensorTests/Golden/frechet.safetensors: CASE.first [N1, D],
CASE.second [N2, D] (float32) and the distance in the metadata key CASE.
"""
import numpy as np
import scipy.linalg
import torch
from safetensors.torch import save_file

rng = np.random.default_rng(0)


def frechet(x, y):
    m1, m2 = x.mean(0), y.mean(0)
    s1, s2 = np.cov(x, rowvar=False), np.cov(y, rowvar=False)
    root = scipy.linalg.sqrtm(s1 @ s2)
    return float(((m1 - m2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.trace(root.real))


tensors, metadata = {}, {}


def case(name, x, y):
    x, y = x.astype(np.float32), y.astype(np.float32)
    tensors[f"{name}.first"] = torch.from_numpy(x)
    tensors[f"{name}.second"] = torch.from_numpy(y)
    metadata[name] = repr(frechet(x.astype(np.float64), y.astype(np.float64)))


# Correlated features with different means and covariances (D = 16).
mix1, mix2 = rng.normal(size=(16, 16)), rng.normal(size=(16, 16)) * 0.5
case("correlated", rng.normal(size=(300, 16)) @ mix1, rng.normal(size=(250, 16)) @ mix2 + 0.3)
# The same distribution drawn twice: the distance is the sampling floor (D = 32).
mix = rng.normal(size=(32, 32))
case("same", rng.normal(size=(400, 32)) @ mix, rng.normal(size=(400, 32)) @ mix)
# Features of unequal scales, as a classifier's are (D = 64, N > D).
scales = np.exp(rng.normal(size=64))
case("scaled", rng.normal(size=(500, 64)) * scales, rng.normal(size=(300, 64)) * scales * 1.2 - 0.1)

save_file(tensors, "Tests/ViTTensorTests/Golden/frechet.safetensors", metadata=metadata)
print(metadata)
