"""Writes Images/<class>.png: the first Fashion-MNIST test image of each class.

Reads the IDX files of Debian's dataset-fashion-mnist package. Run from the repo root:
    python Tests/Reference/fashion_samples.py
"""
import gzip

import numpy as np
from PIL import Image

ROOT = "/usr/share/datasets/fashion-mnist/"
NAMES = ["t-shirt", "trouser", "pullover", "dress", "coat",
         "sandal", "shirt", "sneaker", "bag", "ankle-boot"]

images = np.frombuffer(gzip.open(ROOT + "t10k-images-idx3-ubyte.gz").read()[16:], np.uint8)
images = images.reshape(-1, 28, 28)
labels = np.frombuffer(gzip.open(ROOT + "t10k-labels-idx1-ubyte.gz").read()[8:], np.uint8)
for label, name in enumerate(NAMES):
    index = int(np.nonzero(labels == label)[0][0])
    Image.fromarray(images[index]).save(f"Images/{name}.png")
    print(f"{name}.png: test index {index}")
