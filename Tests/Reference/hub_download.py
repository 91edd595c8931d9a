"""Interoperability of `vit fetch` with huggingface_hub, both ways, through a local server
that answers as the Hub does (X-Repo-Commit, ETag / X-Linked-Etag, X-Linked-Size, a
redirect for the large file, Range requests).

  1. `vit fetch` writes a cache in which huggingface_hub's
     hf_hub_download(..., local_files_only=True) finds every file, byte for byte;
  2. huggingface_hub downloads into another cache, from which `vit classify` with
     HF_HUB_OFFLINE=1 reads the model and classifies as it does from the folder.

Usage: python Tests/Reference/hub_download.py PATH/TO/vit   (run by .ci/run when
huggingface_hub is installed). Exits non-zero on any difference.
"""
import hashlib
import http.server
import os
import subprocess
import sys
import tempfile
import threading

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MODEL = os.path.join(ROOT, "Tests/ViTVisionTests/Golden/hf-vit")
PHOTO = os.path.join(ROOT, "Images/chelsea.png")
REPO, COMMIT = "test-org/tiny-vit", "d4" * 20
FILES = {name: open(os.path.join(MODEL, name), "rb").read()
         for name in ["config.json", "model.safetensors", "preprocessor_config.json"]}
LARGE = {"model.safetensors"}
CDN_PORT = [0]  # the port of the second server, on 127.0.0.2, which serves the large files


class Hub(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def answer(self, body):
        path = self.path.split("?")[0]
        if path.startswith("/cdn/"):
            data = FILES.get(path[len("/cdn/"):])
            if data is None:
                return self.finish_with(404, {}, b"", body)
            start = 0
            if self.headers.get("Range", "").startswith("bytes="):
                start = int(self.headers["Range"][6:].split("-")[0])
                headers = {"Content-Range": f"bytes {start}-{len(data) - 1}/{len(data)}"}
                return self.finish_with(206, headers, data[start:], body)
            return self.finish_with(200, {}, data, body)
        prefix = f"/{REPO}/resolve/"
        if not path.startswith(prefix):
            return self.finish_with(404, {"X-Error-Code": "RepoNotFound"}, b"", body)
        revision, _, name = path[len(prefix):].partition("/")
        if revision not in ("main", COMMIT) or name not in FILES:
            return self.finish_with(404, {"X-Error-Code": "EntryNotFound"}, b"", body)
        data = FILES[name]
        headers = {"X-Repo-Commit": COMMIT}
        if name in LARGE:
            headers.update({
                "X-Linked-Etag": f'"{hashlib.sha256(data).hexdigest()}"', "X-Linked-Size": str(len(data)),
                "ETag": f'"{hashlib.sha1(data).hexdigest()}"',
                # Another host, as the Hub's CDN is: clients read the metadata from this response.
                "Location": f"http://127.0.0.2:{CDN_PORT[0]}/cdn/{name}"})
            return self.finish_with(302, headers, b"", body)
        headers["ETag"] = f'"{hashlib.sha1(b"blob " + data).hexdigest()}"'
        return self.finish_with(200, headers, data, body)

    def finish_with(self, status, headers, data, body):
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if body:
            self.wfile.write(data)

    def do_HEAD(self):
        self.answer(False)

    def do_GET(self):
        self.answer(True)


def main():
    vit = os.path.abspath(sys.argv[1])
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Hub)
    cdn = http.server.ThreadingHTTPServer(("127.0.0.2", 0), Hub)
    CDN_PORT[0] = cdn.server_address[1]
    for each in (server, cdn):
        threading.Thread(target=each.serve_forever, daemon=True).start()
    endpoint = f"http://127.0.0.1:{server.server_address[1]}"
    os.environ["HF_ENDPOINT"] = endpoint
    from huggingface_hub import hf_hub_download  # reads HF_ENDPOINT at import

    failures = 0
    with tempfile.TemporaryDirectory() as ours, tempfile.TemporaryDirectory() as theirs:
        env = dict(os.environ, HF_HUB_CACHE=ours)
        subprocess.run([vit, "fetch", REPO], env=env, check=True, stdout=subprocess.DEVNULL)
        for name, data in FILES.items():
            path = hf_hub_download(REPO, name, cache_dir=ours, local_files_only=True)
            same = open(path, "rb").read() == data
            print(f"huggingface_hub finds SwiftViT's {name}: {'yes' if same else 'NO'}")
            failures += not same

        for name in FILES:
            hf_hub_download(REPO, name, cache_dir=theirs)
        offline = dict(os.environ, HF_HUB_CACHE=theirs, HF_HUB_OFFLINE="1", HF_ENDPOINT="http://127.0.0.1:9")
        named = subprocess.run([vit, "classify", PHOTO, "--model", REPO], env=offline, capture_output=True, text=True)
        folder = subprocess.run([vit, "classify", PHOTO, "--model", MODEL], capture_output=True, text=True)
        same = named.returncode == 0 and named.stdout == folder.stdout
        print(f"SwiftViT reads huggingface_hub's download offline: {'yes' if same else 'NO: ' + named.stderr}")
        failures += not same
    server.shutdown()
    cdn.shutdown()
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
