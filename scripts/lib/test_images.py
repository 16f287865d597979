"""Unit tests of the image helpers: the Dockerfile reader, reference normalisation, the
deterministic layout writer, images.yaml, the image names build-images.sh and build_images.py
know, and the metrics-server image's settings. Run by scripts/check-packaging.sh:

    python3 -m unittest discover -s scripts/lib -p 'test_images.py'
"""

import json
import os
import re
import tarfile
import tempfile
import unittest
from unittest import mock

import build_images
import image_recipes
import images_yaml
from dockerfile import DockerfileError, final_stage
from oci_layout import Entry, familiar, normalise, write_archive

DOCKERFILE = """\
FROM rust AS build
USER 0
CMD ["build"]
FROM debian
# comment
ENV A=1 \\
    B="two words"
EXPOSE 8080 53/udp
CMD ["serve"]
ENTRYPOINT ["/bin/app"]
HEALTHCHECK --interval=10s --retries=5 \\
    CMD ["/bin/app", "healthcheck"]
USER 10001:10001
"""


class DockerfileTest(unittest.TestCase):
    def test_final_stage_only_and_entrypoint_resets_cmd(self):
        s = final_stage(DOCKERFILE)
        self.assertEqual(s["entrypoint"], ["/bin/app"])
        self.assertIsNone(s["cmd"])  # Docker drops a CMD set before ENTRYPOINT
        self.assertEqual(s["user"], "10001:10001")
        self.assertEqual(s["ports"], ["8080/tcp", "53/udp"])
        self.assertEqual(s["env"][1:], ["A=1", "B=two words"])

    def test_healthcheck_defaults_fill_what_is_not_given(self):
        hc = final_stage(DOCKERFILE)["healthcheck"]
        self.assertEqual(hc["test"], ["CMD", "/bin/app", "healthcheck"])
        self.assertEqual((hc["interval"], hc["timeout"], hc["retries"]), (10, 30, 5))

    def test_unknown_instruction_is_an_error_not_a_guess(self):
        with self.assertRaises(DockerfileError):
            final_stage("FROM debian\nONBUILD RUN true\n")


class ReferenceTest(unittest.TestCase):
    def test_normalise_as_the_cri_does(self):
        self.assertEqual(normalise("mail-pressure/mailproxy:0.1.0"), "docker.io/mail-pressure/mailproxy:0.1.0")
        self.assertEqual(normalise("postgres:16"), "docker.io/library/postgres:16")
        self.assertEqual(normalise("localhost/x/pause:1"), "localhost/x/pause:1")
        self.assertEqual(normalise("registry.example:5000/a:b"), "registry.example:5000/a:b")
        self.assertEqual(familiar("docker.io/library/postgres:16"), "postgres:16")


class LayoutTest(unittest.TestCase):
    def build(self, out_dir):
        entries = [Entry("usr/bin/app", "file", data=b"#!/bin/sh\n", mode=0o755),
                   Entry("tmp", "dir", mode=0o1777), Entry("bin", "symlink", target="usr/bin")]
        path = os.path.join(out_dir, "x.oci.tar")
        digest, _ = write_archive("mail-pressure/x:1", {"User": "1:1"}, entries, path, "amd64")
        return path, digest

    def test_same_inputs_same_bytes_and_full_name_in_the_index(self):
        with tempfile.TemporaryDirectory() as a, tempfile.TemporaryDirectory() as b:
            pa, da = self.build(a)
            pb, db = self.build(b)
            self.assertEqual(da, db)
            with open(pa, "rb") as fa, open(pb, "rb") as fb:
                self.assertEqual(fa.read(), fb.read())
            with tarfile.open(pa) as tar:
                index = json.load(tar.extractfile("index.json"))
                names = tar.getnames()
            annotations = index["manifests"][0]["annotations"]
            self.assertEqual(annotations["io.containerd.image.name"], "docker.io/mail-pressure/x:1")
            self.assertEqual(annotations["org.opencontainers.image.ref.name"], "docker.io/mail-pressure/x:1")
            self.assertLess(names.index("index.json"), names.index("manifest.json"))


class ImagesYamlTest(unittest.TestCase):
    def test_spec_fragment_has_only_built_images_and_no_sink(self):
        rows = [{"name": "mailproxy", "reference": "docker.io/mail-pressure/mailproxy:0.1.0"},
                {"name": "postgres", "reference": "localhost/mail-pressure/postgres-debian:15"},
                {"name": "mailpit", "reference": "localhost/mail-pressure/mailpit:v1.33.1"}]
        text = images_yaml.render(rows)
        self.assertIn("proxy:\n  image: mail-pressure/mailproxy:0.1.0\n", text)
        self.assertIn("postgres:\n  image: localhost/mail-pressure/postgres-debian:15\n", text)
        self.assertNotIn("mailpit", text)
        self.assertNotIn("clientImage", text)


class ImageListTest(unittest.TestCase):
    def test_build_images_sh_and_build_images_py_know_the_same_names(self):
        with open(os.path.join(image_recipes.ROOT, "scripts", "build-images.sh")) as f:
            script = f.read()
        shell_all = re.search(r"^all=\(([^)]*)\)", script, re.M).group(1).split()
        self.assertEqual(shell_all, build_images.NAMES)
        go_case = re.search(r"^    ([a-z| -]+)\)\n      command -v go ", script, re.M).group(1)
        self.assertEqual(sorted(n.strip() for n in go_case.split("|")), sorted(image_recipes.GO_IMAGES))
        self.assertTrue(set(image_recipes.GO_IMAGES) <= set(build_images.NAMES))


class GoImageTest(unittest.TestCase):
    def test_metrics_server_as_upstream_dockerfile_with_port_10250(self):
        g = image_recipes.GO_IMAGES["metrics-server"]
        self.assertEqual((g["module"], g["version"], g["reference"]),
                         ("sigs.k8s.io/metrics-server", "v0.8.0",
                          "localhost/mail-pressure/metrics-server:v0.8.0"))
        self.assertIn("-X k8s.io/client-go/pkg/version.gitVersion=v0.8.0", g["ldflags"])
        with tempfile.TemporaryDirectory() as d:
            fake = os.path.join(d, "metrics-server")
            with open(fake, "wb") as f:
                f.write(b"not an ELF file\n")  # ldd: not a dynamic executable, so "static"
            with mock.patch.object(image_recipes, "go_binary", return_value=fake):
                entries, config = image_recipes.go_image("metrics-server", d)
        self.assertEqual(config["Entrypoint"], ["/metrics-server"])
        self.assertEqual(config["User"], "65534:65534")
        self.assertEqual(config["ExposedPorts"], {"10250/tcp": {}})
        self.assertEqual(config["Labels"]["org.opencontainers.image.version"], "v0.8.0")
        paths = {e.path: e for e in entries}
        self.assertEqual((paths["metrics-server"].source, paths["metrics-server"].mode), (fake, 0o755))
        self.assertIn("nobody:x:65534:65534:", paths["etc/passwd"].data.decode())
        self.assertEqual(paths["tmp"].mode, 0o1777)

    def test_prometheus_keeps_the_discoveries_our_configs_use_and_the_stamp_follows_the_patch(self):
        g = image_recipes.GO_IMAGES["prometheus"]
        source = g["patch"]["replace"]["plugins/plugins.go"]
        with open(os.path.join(image_recipes.ROOT, source)) as f:
            imports = re.findall(r'^\t_ "([^"]+)"', f.read(), re.M)
        self.assertEqual(imports, ["github.com/prometheus/prometheus/discovery/dns"])
        configs = [os.path.join(image_recipes.ROOT, p) for p in
                   ("operator/src/reconcile/observability.rs", "deploy/observability/prometheus/prometheus.yml")]
        used = set()
        for path in configs:
            with open(path) as f:
                used |= set(re.findall(r"([a-z]+)_sd_configs", f.read()))
        self.assertEqual(used, {"dns"}, "a new *_sd_configs needs its plugin in " + source)
        stamp = image_recipes._patch_stamp(g)
        with mock.patch.object(image_recipes, "_read", return_value="changed"):
            self.assertNotEqual(image_recipes._patch_stamp(g), stamp)

    def test_kube_network_policies_stamp_follows_its_added_file_and_edits(self):
        g = image_recipes.GO_IMAGES["kube-network-policies"]
        stamp = image_recipes._patch_stamp(g)
        with mock.patch.object(image_recipes, "_read", return_value="changed"):
            self.assertNotEqual(image_recipes._patch_stamp(g), stamp)
        edited = dict(g, patch=dict(g["patch"], edit=[("a.go", "x", "y", 1)]))
        self.assertNotEqual(image_recipes._patch_stamp(edited), stamp)


if __name__ == "__main__":
    unittest.main()
