"""A PEP 517 build backend for the a2amesh package, with no requirements.

It generates the modules of the protos the SDK speaks (the node's AgentHost
API and A2A v1.0) into a2amesh/_proto with protoc and grpc_python_plugin
(Debian: protobuf-compiler, protobuf-compiler-grpc), rewriting their imports
to live under that package (so that they cannot clash with another copy of
the same protos), and packs them with the SDK's sources into a wheel. The
protos are read from the repository (../../proto), or from A2AMESH_PROTO_DIR.
"""

import base64
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import tomllib
import zipfile

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PROTOS = ["lf/a2a/v1/a2a.proto", "a2amesh/v1/agent_host.proto"]
# Generated modules import each other by their proto package: a2amesh.v1...,
# lf.a2a.v1...; under the SDK they are a2amesh._proto.<the same>.
IMPORT = re.compile(r"^from (lf\.a2a\.v1|a2amesh\.v1) import ", re.MULTILINE)


def _project():
    with open(os.path.join(HERE, "pyproject.toml"), "rb") as f:
        return tomllib.load(f)["project"]


def _tool(name):
    path = shutil.which(name)
    if path is None:
        raise RuntimeError(f"building a2amesh needs {name} (Debian: apt install "
                           "protobuf-compiler protobuf-compiler-grpc)")
    return path


def _proto_dir():
    """The protos: A2AMESH_PROTO_DIR, an sdist's own copy, or the repository's."""
    if "A2AMESH_PROTO_DIR" in os.environ:
        return os.environ["A2AMESH_PROTO_DIR"]
    own = os.path.join(HERE, "proto")
    return own if os.path.isdir(own) else os.path.join(HERE, os.pardir, os.pardir, "proto")


def generate(out_dir):
    """Writes the generated modules under out_dir/a2amesh/_proto."""
    proto_dir = _proto_dir()
    for proto in PROTOS:
        if not os.path.exists(os.path.join(proto_dir, proto)):
            raise RuntimeError(f"building a2amesh: {proto} not found under {proto_dir} "
                               "(build from the repository, or set A2AMESH_PROTO_DIR)")
    with tempfile.TemporaryDirectory() as raw:
        subprocess.run([_tool("protoc"), "-I", proto_dir, f"--python_out={raw}",
                        f"--grpc_python_out={raw}",
                        f"--plugin=protoc-gen-grpc_python={_tool('grpc_python_plugin')}",
                        *PROTOS], check=True)
        root = os.path.join(out_dir, "a2amesh", "_proto")
        for dirpath, _, files in os.walk(raw):
            rel = os.path.relpath(dirpath, raw)
            target = os.path.normpath(os.path.join(root, rel))
            os.makedirs(target, exist_ok=True)
            open(os.path.join(target, "__init__.py"), "a").close()
            for name in files:
                with open(os.path.join(dirpath, name)) as f:
                    text = IMPORT.sub(r"from a2amesh._proto.\1 import ", f.read())
                with open(os.path.join(target, name), "w") as f:
                    f.write(text)
        open(os.path.join(root, "__init__.py"), "a").close()


def _files(*bases):
    """(archive name, path) of the package's files under each base directory."""
    out = []
    for base in bases:
        pkg = os.path.join(base, "a2amesh")
        for dirpath, dirs, files in os.walk(pkg):
            dirs[:] = [d for d in dirs if d != "__pycache__"]
            for name in files:
                if name.endswith(".py") or name == "py.typed":
                    path = os.path.join(dirpath, name)
                    out.append((os.path.relpath(path, base).replace(os.sep, "/"), path))
    return sorted(out)


def _metadata(project):
    lines = ["Metadata-Version: 2.1", f"Name: {project['name']}",
             f"Version: {project['version']}", f"Summary: {project['description']}",
             f"Requires-Python: {project['requires-python']}"]
    lines += [f"Requires-Dist: {d}" for d in project.get("dependencies", [])]
    return "\n".join(lines) + "\n"


def _record_line(name, data):
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{name},sha256={digest},{len(data)}"


def get_requires_for_build_wheel(config_settings=None):
    return []


def get_requires_for_build_sdist(config_settings=None):
    return []


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    project = _project()
    dist = f"{project['name']}-{project['version']}"
    wheel_name = f"{dist}-py3-none-any.whl"
    with tempfile.TemporaryDirectory() as staging:
        generate(staging)
        records = []
        with zipfile.ZipFile(os.path.join(wheel_directory, wheel_name), "w",
                             zipfile.ZIP_DEFLATED) as wheel:
            def add(name, data):
                wheel.writestr(name, data)
                records.append(_record_line(name, data))
            for name, path in _files(HERE, staging):
                with open(path, "rb") as f:
                    add(name, f.read())
            info = f"{dist}.dist-info"
            add(f"{info}/METADATA", _metadata(project).encode())
            add(f"{info}/WHEEL", b"Wheel-Version: 1.0\nGenerator: a2amesh-backend\n"
                                 b"Root-Is-Purelib: true\nTag: py3-none-any\n")
            add(f"{info}/top_level.txt", b"a2amesh\n")
            records.append(f"{info}/RECORD,,")
            wheel.writestr(f"{info}/RECORD", "\n".join(records) + "\n")
    return wheel_name


def build_sdist(sdist_directory, config_settings=None):
    """The SDK's sources with the protos it needs, buildable anywhere."""
    import tarfile
    project = _project()
    dist = f"{project['name']}-{project['version']}"
    proto_dir = _proto_dir()
    name = f"{dist}.tar.gz"
    with tarfile.open(os.path.join(sdist_directory, name), "w:gz") as tar:
        for item in ("pyproject.toml", "README.md", "_build/backend.py"):
            tar.add(os.path.join(HERE, item), f"{dist}/{item}")
        for arc, path in _files(HERE):
            tar.add(path, f"{dist}/{arc}")
        for proto in PROTOS:
            tar.add(os.path.join(proto_dir, proto), f"{dist}/proto/{proto}")
    return name


if __name__ == "__main__":
    # python3 _build/backend.py OUT: the generated modules only (tests, tools).
    generate(sys.argv[1])
