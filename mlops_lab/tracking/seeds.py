"""Seeds a tracked cell sets, and the randomness it leaves unseeded.

Seeds become params (``seed.numpy``, ``seed.torch``, ``seed.<model>`` for an estimator's
``random_state``); what the cell leaves to chance — a random generator used with no seed, an
estimator without ``random_state`` — is the run's ``reproducibility`` tag, and known sources of
nondeterminism beside seeds (threads, the GPU, the hash seed) its ``nondeterminism`` tag.
``ml.checkout`` warns before a run that cannot be expected to reproduce is re-run.
"""

from __future__ import annotations

import ast
import os
import sys
from contextlib import contextmanager

# (module, function) -> the param it sets.  Each is watched while a tracked cell runs (functions
# only: a class such as RandomState, wrapped, would break isinstance checks).
SEEDERS = {
    ("random", "seed"): "seed.random",
    ("numpy.random", "seed"): "seed.numpy",
    ("numpy.random", "default_rng"): "seed.numpy_rng",
    ("torch", "manual_seed"): "seed.torch",
    ("tensorflow.random", "set_seed"): "seed.tensorflow",
}
# Calls that draw from a global generator: module -> the seeder that makes them reproducible.
GLOBAL_DRAWS = {"random": "seed.random", "numpy.random": "seed.numpy", "torch": "seed.torch"}
TORCH_DRAWS = {"rand", "randn", "randint", "randperm", "normal", "bernoulli", "multinomial", "rand_like", "randn_like"}
UNSEEDED_TAG, NONDETERMINISM_TAG = "reproducibility", "nondeterminism"


@contextmanager
def watching(namespace: dict):
    """Record the seeds passed to the seeders while the block runs: ``{param: value}``, with
    ``None`` for a generator made with no seed.  Module functions and the names the notebook
    imported them as are both watched, and restored afterwards."""
    seen: dict[str, object] = {}
    saved: list[tuple[object, str, object]] = []
    wrappers: dict[int, object] = {}
    for (module_name, function), param in SEEDERS.items():
        module = sys.modules.get(module_name)
        original = getattr(module, function, None) if module is not None else None
        if original is None:
            continue
        wrapper = _watch(original, param, seen)
        wrappers[id(original)] = wrapper
        saved.append((module, function, original))
        setattr(module, function, wrapper)
    imported = {name: value for name, value in namespace.items() if id(value) in wrappers}
    namespace.update({name: wrappers[id(value)] for name, value in imported.items()})
    try:
        yield seen
    finally:
        for module, function, original in saved:
            setattr(module, function, original)
        for name, value in imported.items():
            if namespace.get(name) is wrappers[id(value)]:
                namespace[name] = value


LIBRARIES = tuple({sys.prefix, sys.base_prefix, sys.exec_prefix})  # where installed packages live


def _watch(original, param: str, seen: dict):
    def seeder(*args, **kwargs):
        # The notebook's own calls, not a library's (an import may make a generator of its own).
        if not sys._getframe(1).f_code.co_filename.startswith(LIBRARIES):
            seed = args[0] if args else kwargs.get("seed")
            seen[param] = seed if isinstance(seed, (int, str)) or seed is None else repr(seed)[:100]
        return original(*args, **kwargs)

    seeder.__wrapped__ = original
    seeder.__doc__ = original.__doc__
    return seeder


def global_draws(tree: ast.AST, aliases: dict[str, str]) -> set[str]:
    """The seeders a cell's draws from global generators need (``np.random.rand()`` → seed.numpy).
    ``aliases`` maps the cell's names to module names (``np`` → ``numpy``)."""
    needed = set()
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
            continue
        owner = _dotted(node.func.value, aliases)
        function = node.func.attr
        global_numpy_or_random = owner in ("random", "numpy.random") and (owner, function) not in SEEDERS
        if (global_numpy_or_random and function not in ("Generator", "RandomState")) or (
            owner == "torch" and function in TORCH_DRAWS
        ):
            needed.add(GLOBAL_DRAWS[owner])
    return needed


def seeding_calls(tree: ast.AST, aliases: dict[str, str], namespace: dict) -> dict[str, object]:
    """Seeds the cell's own code passes as a literal or a name (``torch.manual_seed(seed)``): what
    the watch cannot see when the cell imports the library itself."""
    found = {}
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.args):
            continue
        param = SEEDERS.get((_dotted(node.func.value, aliases), node.func.attr))
        argument = node.args[0]
        if param is None:
            continue
        if isinstance(argument, ast.Constant) and isinstance(argument.value, int):
            found[param] = argument.value
        elif isinstance(argument, ast.Name) and isinstance(namespace.get(argument.id), int):
            found[param] = namespace[argument.id]
    return found


def _dotted(node: ast.AST, aliases: dict[str, str]) -> str | None:
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name) or node.id not in aliases:
        return None
    return ".".join([aliases[node.id], *reversed(parts)])


def module_aliases(namespace: dict, tree: ast.AST) -> dict[str, str]:
    """The names of modules, as the notebook has them and as the cell imports them:
    ``{"np": "numpy", "random": "random", …}``."""
    aliases = {name: value.__name__ for name, value in namespace.items() if type(value).__name__ == "module"}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.asname:
                    aliases[alias.asname] = alias.name
                else:
                    aliases[alias.name.partition(".")[0]] = alias.name.partition(".")[0]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            for alias in node.names:
                aliases[alias.asname or alias.name] = f"{node.module}.{alias.name}"
    return aliases


def assess(seen: dict, needed: set[str], models: dict[str, object]) -> tuple[dict[str, str], dict[str, str]]:
    """The run's seed params and tags, from the seeds seen, the global draws and the models logged."""
    params = {param: str(seed) for param, seed in seen.items() if seed is not None}
    unseeded = [
        f"{param.removeprefix('seed.')} global generator used without a seed" for param in sorted(needed - set(seen))
    ]
    unseeded += [f"{param.removeprefix('seed.')} made without a seed" for param, seed in seen.items() if seed is None]
    threads = []
    for name, model in models.items():
        for part, estimator in _estimators(name, model):
            hyper = _params_of(estimator)
            if "random_state" in hyper:
                if hyper["random_state"] is not None:
                    params[f"seed.{part}"] = str(hyper["random_state"])
                elif _draws_at_random(estimator, hyper):
                    unseeded.append(f"{part}.random_state is None")
            jobs = hyper.get("n_jobs")
            if jobs not in (None, 1):
                threads.append(f"{part}.n_jobs={jobs}")
    sources = []
    if threads:
        sources.append("threads (" + ", ".join(threads) + ")")
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available() and not torch.backends.cudnn.deterministic:
        sources.append("GPU kernels (torch.backends.cudnn.deterministic is False)")
    if os.environ.get("PYTHONHASHSEED") in (None, "random"):
        sources.append("hash seed (PYTHONHASHSEED unset: set and dict-of-str ordering varies)")
    tags = {}
    if unseeded:
        tags[UNSEEDED_TAG] = "unseeded: " + "; ".join(unseeded)
    elif params:
        tags[UNSEEDED_TAG] = "seeded"
    if sources and (unseeded or params):  # only where the cell uses randomness at all
        tags[NONDETERMINISM_TAG] = "; ".join(sources)
    return params, tags


def _estimators(name: str, model):
    """The model and, for a pipeline, each of its steps (``pipe.logisticregression``)."""
    yield name, model
    for step, estimator in getattr(model, "steps", None) or []:
        yield from _estimators(f"{name}.{step}", estimator)


# Estimators that take a random_state but use it only in some settings (scikit-learn's own docs).
DETERMINISTIC_SOLVERS = {"lbfgs", "newton-cg", "newton-cholesky", "cholesky", "svd", "lsqr", "sparse_cg", "auto"}


def _draws_at_random(estimator, hyper: dict) -> bool:
    if hyper.get("solver") in DETERMINISTIC_SOLVERS or hyper.get("selection") == "cyclic":
        return False
    return not (type(estimator).__name__ in ("SVC", "NuSVC", "SVR", "NuSVR") and not hyper.get("probability"))


def _params_of(model) -> dict:
    try:
        return model.get_params(deep=False)
    except Exception:
        return {}
