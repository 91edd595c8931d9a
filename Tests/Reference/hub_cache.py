"""The Hugging Face cache as huggingface_hub reads it, beside `vit models`.

Builds a cache as the Hub's "local cache" page lays it out (the same layout the Swift test
HubCacheCLITests builds), then checks that huggingface_hub resolves every revision to the
snapshot SwiftViT loads, that its sizes and revisions are what `vit models` prints, and that
its delete_revisions estimate is what `vit models rm` frees. Run by hand from the
repository root, in a virtual environment with huggingface_hub, after `swift build -c release`:

    python Tests/Reference/hub_cache.py
"""
import hashlib
import os
import shutil
import subprocess
import tempfile

from huggingface_hub import scan_cache_dir, try_to_load_from_cache

A, B, C = "a1" * 20, "b2" * 20, "c3" * 20


def add(root, source, repo, commit, refs):
    folder = f"{root}/models--{repo.replace('/', '--')}"
    os.makedirs(f"{folder}/blobs", exist_ok=True)
    for directory, _, files in os.walk(source):
        for name in files:
            path = os.path.join(directory, name)
            relative = os.path.relpath(path, source)
            data = open(path, "rb").read()
            digest = hashlib.sha256(data).hexdigest()
            with open(f"{folder}/blobs/{digest}", "wb") as f:
                f.write(data)
            link = f"{folder}/snapshots/{commit}/{relative}"
            os.makedirs(os.path.dirname(link), exist_ok=True)
            os.symlink("../" * (relative.count("/") + 2) + f"blobs/{digest}", link)
    for ref in refs:
        os.makedirs(os.path.dirname(f"{folder}/refs/{ref}"), exist_ok=True)
        with open(f"{folder}/refs/{ref}", "w") as f:
            f.write(commit)


def vit(root, *arguments):
    env = dict(os.environ, HF_HUB_CACHE=root)
    return subprocess.run([".build/release/vit", *arguments], env=env, capture_output=True, text=True, check=True).stdout


with tempfile.TemporaryDirectory() as root:
    add(root, "Tests/ViTVisionTests/Golden/hf-vit", "test-org/tiny-vit", A, ["main"])
    add(root, "Tests/ViTVisionTests/Golden/timm-vit", "test-org/tiny-vit", B, ["v1", "releases/2"])
    add(root, "Weights/all-MiniLM-L6-v2", "sentence-transformers/all-MiniLM-L6-v2", C, ["main"])
    for revision, commit in [("main", A), ("v1", B), ("releases/2", B), (A, A)]:
        path = try_to_load_from_cache("test-org/tiny-vit", "config.json", cache_dir=root, revision=revision)
        assert path == f"{root}/models--test-org--tiny-vit/snapshots/{commit}/config.json", (revision, path)
    info = scan_cache_dir(root)
    assert not info.warnings, info.warnings
    expected = [f"cache: {root}"]
    for repo in sorted(info.repos, key=lambda r: r.repo_id):
        revisions = sorted((ref, r.commit_hash) for r in repo.revisions for ref in r.refs)
        main = next(r.commit_hash for r in repo.revisions if "main" in r.refs)
        kind = "hf-vit" if main == A else "sentence-transformers"
        listed = ", ".join(f"{ref} ({commit[:12]})" for ref, commit in revisions)
        expected.append(f"{repo.repo_id}  {kind}  {repo.size_on_disk / 1e6:.1f} MB  revisions: {listed}")
    listing = vit(root, "models").splitlines()
    assert listing == expected, (listing, expected)
    freed = info.delete_revisions(B).expected_freed_size
    removed = vit(root, "models", "rm", "test-org/tiny-vit@v1")
    assert removed == f"removed test-org/tiny-vit@v1 ({freed / 1e6:.1f} MB freed)\n", (removed, freed)
    print("\n".join(listing))
    print(f"delete_revisions({B[:12]}) frees {freed} bytes; vit models rm: {removed.strip()}")
