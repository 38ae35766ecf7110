"""What each task is asked to do: one frozen dataclass per task, checked when it is made.

A settings object is the only place inputs are checked. The same object is the recipe saved
with every output, the query string of a shared link, the API's arguments and the CLI's
options: each field is declared once, with its default, range and help (`setting()`), and
the command line and the app build their controls from those declarations.

Checks that need the model (a class index, a layer range, a truncation cutoff) run in
`resolve(G)`, which returns the settings with everything made explicit for that model: that
is what recipes store, so a recipe rebuilds the same pixels even if defaults change.
"""

import dataclasses
import hashlib
import math
import numbers
import re
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import numpy as np

MAX_SEED = 2 ** 32 - 1
MAX_IMAGES = 64  # per request: seeds in a grid, cells in a mixing grid, noise samples
MAX_FRAMES = 1800  # per video: one minute at 30 fps
MAX_LISTED_SEEDS = 100_000  # no list of seeds is longer, whatever the request's own limit


class SettingsError(ValueError):
    """Bad input; the message is one sentence meant for people: what was wrong, what to do."""


# ----------------------------------------------------------------------------- checks of single values

def is_number(x):
    """A finite real number (numpy scalars too), not a bool."""
    return isinstance(x, numbers.Real) and not isinstance(x, (bool, np.bool_)) and math.isfinite(x)


def is_whole(x):
    return isinstance(x, (int, np.integer)) and not isinstance(x, (bool, np.bool_))


def parse_seeds(seeds, max_count=MAX_IMAGES):
    """'0-7, 42' or [0, 1] -> a list of ints in [0, 2**32 - 1], at most max_count of them."""
    if isinstance(seeds, (int, np.integer)) and not isinstance(seeds, (bool, np.bool_)):
        seeds = [seeds]
    if isinstance(seeds, str):
        items = [s.strip() for s in seeds.replace(";", ",").split(",")]
        if not any(items):
            raise SettingsError("No seeds given: write them like '0-7, 42'.")
        out = []
        for item in items:
            if not item:
                continue
            m = re.fullmatch(r"([0-9]+)\s*(?:-|\.\.)\s*([0-9]+)", item)
            if m:
                lo, hi = _seed_int(m.group(1)), _seed_int(m.group(2))
                if lo > hi:
                    raise SettingsError(f"The seed range {item!r} runs backwards; write it as {hi}-{lo}.")
                if hi - lo + 1 > max_count:
                    raise SettingsError(f"The seed range {item!r} has {hi - lo + 1} seeds; at most {max_count} at once.")
                out.extend(range(lo, hi + 1))
            elif re.fullmatch(r"[0-9]+", item):
                out.append(_seed_int(item))
            else:
                raise SettingsError(f"{item!r} is not a seed: seeds are whole numbers from 0 to {MAX_SEED}, like '0-7, 42'.")
        seeds = out
    elif isinstance(seeds, (list, tuple, np.ndarray)):
        seeds = list(seeds)
        for s in seeds:
            if isinstance(s, (bool, np.bool_)) or not is_whole(s) and not (isinstance(s, float) and s.is_integer()):
                raise SettingsError(f"{s!r} is not a seed: seeds are whole numbers from 0 to {MAX_SEED}.")
        seeds = [int(s) for s in seeds]
    else:
        raise SettingsError(f"{seeds!r} is not a list of seeds: write them like '0-7, 42'.")
    if not seeds:
        raise SettingsError("No seeds given: write them like '0-7, 42'.")
    for s in seeds:
        if not 0 <= s <= MAX_SEED:
            raise SettingsError(f"Seed {s} is out of range: seeds go from 0 to {MAX_SEED}.")
    if len(seeds) > max_count:
        raise SettingsError(f"{len(seeds)} seeds asked for; at most {max_count} at once.")
    return seeds


def _seed_int(digits):
    """int() of a seed's digits; very long numbers are refused before int() refuses them less kindly."""
    if len(digits.lstrip("0")) > 20:
        raise SettingsError(f"Seed {digits[:20]}... is out of range: seeds go from 0 to {MAX_SEED}.")
    return int(digits)


def format_seeds(seeds):
    """[0, 1, 2, 3, 42] -> '0-3, 42': the short text form, for links and text boxes."""
    parts, i = [], 0
    while i < len(seeds):
        j = i
        while j + 1 < len(seeds) and seeds[j + 1] == seeds[j] + 1:
            j += 1
        parts.append(f"{seeds[i]}-{seeds[j]}" if j > i + 1 else ", ".join(map(str, seeds[i:j + 1])))
        i = j + 1
    return ", ".join(parts)


def parse_layer_range(text, num_ws):
    """'4-8' or '4:8' or (4, 8) -> a half-open range (start, stop) within [0, num_ws]."""
    if isinstance(text, str):
        m = re.fullmatch(r"\s*([0-9]{1,9})\s*(?:-|:|\.\.)\s*([0-9]{1,9})\s*", text)
        if not m:
            raise SettingsError(f"{text!r} is not a layer range: write it as start-stop, like 0-4 (stop not included).")
        start, stop = int(m.group(1)), int(m.group(2))
    else:
        try:
            start, stop = (int(v) for v in text)
        except (TypeError, ValueError, OverflowError):  # OverflowError: int(inf)
            raise SettingsError(f"{text!r} is not a layer range: give (start, stop).") from None
    if not 0 <= start <= stop <= num_ws:
        raise SettingsError(f"Layer range {start}-{stop} is outside this model's layers 0-{num_ws} (stop not included).")
    return start, stop


def _layers(value, groups):
    """A layer choice as given: a group name, a 'start-stop' text or a (start, stop) pair."""
    if isinstance(value, str) and value.strip() in groups:
        return value.strip()
    if isinstance(value, str):
        parse_layer_range(value, 10 ** 9)  # the model's own bound is checked by resolve()
        return value.strip()
    return parse_layer_range(value, 10 ** 9)


def _class(value):
    """A class index; None, '' and -1 (the app's "none") mean no class."""
    if value is None or value == "" or (is_number(value) and value == -1):
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if not is_whole(value) or value < 0:
        raise SettingsError(f"Class {value!r} does not exist: classes are whole numbers from 0.")
    return int(value)


def _number(label, low, high, hint=""):
    def check(value):
        if not is_number(value) or not low <= value <= high:
            raise SettingsError(f"{label} {value!r} must be from {low} to {high}{hint}.")
        return float(value)
    return check


def _whole(label, low, high=None):
    def check(value):
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if not is_whole(value) or value < low or (high is not None and value > high):
            bound = f"from {low} to {high}" if high is not None else f"of at least {low}"
            raise SettingsError(f"{label} {value!r} must be a whole number {bound}.")
        return int(value)
    return check


def _choice(label, choices):
    listed = f"{choices[0]} or {choices[1]}" if len(choices) == 2 else "one of " + ", ".join(choices)

    def check(value):
        if value not in choices:
            raise SettingsError(f"{label} {value!r} is not {listed}.")
        return value
    return check


def check_psi(psi):
    if not is_number(psi) or not -2 <= psi <= 2:
        raise SettingsError(f"Truncation psi {psi!r} is outside [-2, 2]; 0.7 is a good start.")
    return float(psi)


def _finite(label):
    def check(value):
        if not is_number(value):
            raise SettingsError(f"Translate and rotate take finite numbers; {label.lower()} is {value!r}.")
        return float(value)
    return check


def _optional(check):
    return lambda value: None if value is None else check(value)


@dataclass(frozen=True, eq=False)
class GivenFile:
    """A file given as input (a W file, a directions file): its arrays, read when the settings are
    made, and its sha256. Recipes hold only the hash: an upload's name and path are private."""
    sha256: str
    name: str = "a file"
    arrays: dict = field(default=None, repr=False)  # None when known only by hash (from a recipe)

    def needed(self, what):
        if self.arrays is None:
            raise SettingsError(f"This recipe starts from a {what} file (sha256 {self.sha256[:12]}...); give that "
                                "file to rebuild it.")
        return self.arrays


def _given_file(read):
    """A check for a file field: None, a path (read(path) -> its arrays) or 'sha256:...' (from a recipe)."""
    def check(value):
        if value is None or value == "" or isinstance(value, GivenFile):
            return value or None
        if isinstance(value, str) and value.startswith("sha256:"):
            return GivenFile(value[len("sha256:"):])
        if not isinstance(value, (str, Path)):
            raise SettingsError(f"{value!r} is not a file name.")
        path = Path(value)
        arrays = read(path)
        try:
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
        except OSError as e:
            raise SettingsError(f"Cannot read {path.name}: {e.strerror}.") from None
        return GivenFile(digest, path.name, arrays)
    return check


def _read_w(path):
    from .outputs import read_w  # outputs imports this module
    return {"w": read_w(path)}


def _read_directions(path):
    from .outputs import read_arrays
    return read_arrays(path, ("directions", "values"), "directions")


W_FILE = dict(help="start from a W file (.npz in NVIDIA's layout, key w) instead of seeds",
              check=_given_file(_read_w), kind="file", flag="--w")


# ----------------------------------------------------------------------------- declaring fields

@dataclass(frozen=True)
class Spec:
    """How one settings field is checked, named and offered. Written once, read by the CLI,
    the app, links and recipes."""
    help: str  # one line for people: the CLI's help, the app's label
    check: object  # value -> normalised value, or SettingsError
    kind: str = "text"  # text, seeds, seed, float, int, choice, bool, layers, class
    low: float = None  # the range people may choose from in a control
    high: float = None
    step: float = None
    choices: tuple = ()
    flag: str = None  # the CLI's option, when not --field-name
    query: str = None  # the name in a link's query string, when not the field name
    in_app: bool = True  # a control in the app (else its default is used there)


def setting(default, help, check, **spec):
    return field(default=default, metadata={"spec": Spec(help, check, **spec)})


def spec_of(f):
    return f.metadata["spec"]


SEEDS = dict(kind="seeds")
PSI = dict(help="truncation psi: lower is more typical, 1 shows the model's full variety", check=check_psi,
           kind="float", low=-1.0, high=1.5, step=0.05)
CUTOFF = dict(help="truncate only the first CUTOFF style inputs (default: the model's own)",
              check=_optional(_whole("Truncation cutoff", 0)), kind="int", flag="--cutoff", in_app=False)
NOISE_MODE = dict(help="noise inputs: const (the stored noise), random, or none", kind="choice",
                  check=_choice("Noise mode", ("const", "random", "none")), choices=("const", "random", "none"),
                  query="noise")
NOISE_SEED = dict(help="seed of the random noise", check=_whole("Noise seed", 0, MAX_SEED), kind="int",
                  in_app=False)
CLASS = dict(help="class index, for conditional models only (-1 or empty: none)", check=_class, kind="class",
             flag="--class", query="cls")
BATCH = dict(help="images per pass through the generator (default: planned from the model and the memory budget)",
             check=_optional(_whole("Batch size", 1)), kind="int", in_app=False)


# ----------------------------------------------------------------------------- the settings classes

class Settings:
    """Common behaviour of the settings dataclasses: checks on construction, recipes, links."""

    kind: ClassVar[str]  # the recipe's "kind" and the CLI command's name
    tab: ClassVar[str]  # the app tab's id, in links

    def __post_init__(self):
        for f in dataclasses.fields(self):
            object.__setattr__(self, f.name, spec_of(f).check(getattr(self, f.name)))

    @classmethod
    def fields(cls):
        return dataclasses.fields(cls)

    @classmethod
    def app_fields(cls):
        """The fields the app offers as controls (the others keep their defaults there)."""
        return [f for f in cls.fields() if spec_of(f).in_app]

    def replace(self, **changes):
        return dataclasses.replace(self, **changes)

    # -- recipes: the fields as JSON values, with the model and what the output is
    def to_recipe(self, G=None, **extra):
        values = {f.name: _jsonable(getattr(self, f.name)) for f in self.fields()}
        model = {"model": getattr(G, "source", None), "model_sha256": getattr(G, "sha256", None)} if G else {}
        return {"kind": self.kind, **model, **values, **extra}

    @classmethod
    def from_recipe(cls, recipe):
        """The settings a recipe was made with. Every field must be there (as it was written)."""
        recipe = cls.upgrade_recipe(dict(recipe))
        names = [f.name for f in cls.fields()]
        if any(name not in recipe for name in names):
            raise SettingsError(f"The {cls.kind} recipe has missing or wrong fields.")
        return cls(**{name: recipe[name] for name in names})

    @classmethod
    def upgrade_recipe(cls, recipe):
        """Recipes written in an older layout, in today's."""
        return recipe

    # -- links: ?tab=...&seeds=0-7&psi=0.7
    def to_query(self, model=None):
        """The link's query; files (uploads) are never in links."""
        params = {"tab": self.tab}
        if model:
            params["model"] = model
        for f in self.app_fields():
            spec = spec_of(f)
            value = getattr(self, f.name)
            if value is not None and spec.kind != "file":
                params[spec.query or f.name] = as_text(spec, value)
        return urllib.parse.urlencode(params)

    @classmethod
    def values_from_query(cls, query):
        """{field: value} for the fields a link's query names, parsed as their kind; a value that
        does not parse is left out (the control keeps its default)."""
        values = {}
        for f in cls.fields():
            spec = spec_of(f)
            text = query.get(spec.query or f.name)
            if text is None:
                continue
            value = from_text(spec, text)
            if value is not None:
                values[f.name] = value
        return values

    def image_count(self):
        """How many images the task makes (the memory planner counts them)."""
        raise NotImplementedError

    streamed: ClassVar[bool] = False  # whether finished images leave memory as they are made (a video's frames)

    def check_model(self, G, max_images, max_frames):
        """The checks that need the model and the request's limits; returns the fields made explicit."""
        return {}

    def resolve(self, G, max_images=MAX_IMAGES, max_frames=MAX_FRAMES, max_memory=None):
        """These settings made explicit for model G (layer ranges as numbers, the batch size planned),
        after the checks that need the model. This is what recipes store."""
        from .planner import plan_batch  # the planner reads the model's layers; settings alone do not need it
        check_class(G, self.class_idx)
        if getattr(self, "w_file", None) is not None:
            w_file_ws(G, self.w_file)
        cutoff = getattr(self, "truncation_cutoff", None)
        if cutoff is not None and cutoff > G.num_ws:
            raise SettingsError(f"Truncation cutoff {cutoff!r} must be a whole number from 0 to {G.num_ws}.")
        changes = self.check_model(G, max_images, max_frames)
        changes["batch_size"] = plan_batch(G, self.image_count(), self.batch_size, max_memory, self.streamed)
        return self.replace(**changes)


def as_text(spec, value):
    """A field's value as a link or a text box shows it."""
    if isinstance(value, str):
        return value
    if spec.kind == "seeds":
        return format_seeds(list(value))
    if spec.kind == "layers" and not isinstance(value, str):
        return f"{value[0]}-{value[1]}"
    if spec.kind == "components":
        return _components_text(value)
    if spec.kind == "bool":
        return "1" if value else "0"
    return str(value)


def from_text(spec, text):
    """A field's value from a link's text; None when it does not parse (and for files: links carry none)."""
    if spec.kind == "file":
        return None
    if spec.kind == "bool":
        return text.lower() in ("1", "true", "yes")
    if spec.kind in ("float", "int", "class", "seed"):
        try:
            value = float(text)
        except ValueError:
            return None
        if not math.isfinite(value):
            return None
        return int(value) if spec.kind != "float" and value.is_integer() else value
    return text


def _jsonable(value):
    if isinstance(value, GivenFile):
        return "sha256:" + value.sha256
    if isinstance(value, tuple):
        return [_jsonable(v) for v in value]
    return value


def _seed_list(value):
    return tuple(parse_seeds(value, MAX_LISTED_SEEDS))


def _one_seed(value):
    return parse_seeds(value if isinstance(value, str) else [value], 1)[0]


@dataclass(frozen=True)
class GenerateSettings(Settings):
    """Faces from seeds."""
    kind: ClassVar[str] = "generate"
    tab: ClassVar[str] = "generate"

    seeds: tuple = setting("0-7", "seeds, like 0-7, 42", _seed_list, **SEEDS)
    psi: float = setting(0.7, **PSI)
    truncation_cutoff: int = setting(None, **dict(CUTOFF, in_app=True))
    noise_mode: str = setting("const", **NOISE_MODE)
    noise_seed: int = setting(0, **dict(NOISE_SEED, in_app=True))
    class_idx: int = setting(None, **CLASS)
    w_file: object = setting(None, **dict(W_FILE, help="render the ws of a W file (.npz in NVIDIA's layout) "
                                          "instead of seeds, with psi not applied"))
    translate_x: float = setting(0.0, "translate x (StyleGAN3 only)", _finite("Translate x"), kind="float",
                                 low=-1.0, high=1.0, step=0.05)
    translate_y: float = setting(0.0, "translate y (StyleGAN3 only)", _finite("Translate y"), kind="float",
                                 low=-1.0, high=1.0, step=0.05)
    rotate: float = setting(0.0, "rotate, degrees (StyleGAN3 only)", _finite("Rotate"), kind="float",
                            low=-180.0, high=180.0, step=1.0)
    batch_size: int = setting(None, **BATCH)

    @classmethod
    def upgrade_recipe(cls, recipe):
        if "translate" in recipe:  # until 2026-12: one field [x, y]
            translate = recipe.pop("translate")
            if not isinstance(translate, (list, tuple)) or len(translate) != 2:
                raise SettingsError("Translate takes two finite numbers (x, y) and rotate one (degrees).")
            recipe["translate_x"], recipe["translate_y"] = translate
        return recipe

    def image_count(self):
        return len(self.w_file.arrays["w"]) if self.w_file else len(self.seeds)

    def check_model(self, G, max_images, max_frames):
        if self.w_file and self.image_count() > max_images:
            raise SettingsError(f"{self.w_file.name} holds {self.image_count()} ws; at most {max_images} at once.")
        _check_count(self.seeds, max_images)
        if (self.translate_x, self.translate_y, self.rotate) != (0, 0, 0) and not G.synthesis.accepts_transform:
            raise SettingsError(f"Translate and rotate need a StyleGAN3 model; this one is {G.family}.")
        return {}


MIX_PRESETS = ("coarse", "middle", "fine")


@dataclass(frozen=True)
class MixSettings(Settings):
    """The StyleGAN paper's style-mixing figure."""
    kind: ClassVar[str] = "style_mix"
    tab: ClassVar[str] = "mix"

    row_seeds: tuple = setting("1, 2, 3", "row seeds: the faces that receive styles", _seed_list,
                               flag="--rows", query="rows", **SEEDS)
    col_seeds: tuple = setting("4, 5, 6, 7", "column seeds: the faces that give styles", _seed_list,
                               flag="--cols", query="cols", **SEEDS)
    layers: object = setting("coarse", "layers taken from the columns: coarse, middle, fine, or a range start-stop "
                             "(stop not included)", lambda v: _layers(v, MIX_PRESETS), kind="layers",
                             choices=MIX_PRESETS)
    psi: float = setting(0.7, **PSI)
    truncation_cutoff: int = setting(None, **CUTOFF)
    noise_mode: str = setting("const", **dict(NOISE_MODE, in_app=False))
    noise_seed: int = setting(0, **NOISE_SEED)
    class_idx: int = setting(None, **CLASS)
    w_file: object = setting(None, **dict(W_FILE, help="rows from a W file (.npz in NVIDIA's layout) instead of "
                                          "row seeds"))
    batch_size: int = setting(None, **BATCH)

    def rows(self):
        return len(self.w_file.arrays["w"]) if self.w_file else len(self.row_seeds)

    def image_count(self):
        return len(set(self.row_seeds + self.col_seeds)) + self.rows() * len(self.col_seeds)

    def check_model(self, G, max_images, max_frames):
        _check_count(self.row_seeds, max_images)
        _check_count(self.col_seeds, max_images)
        if self.rows() * len(self.col_seeds) > max_images:
            raise SettingsError(f"{self.rows()} x {len(self.col_seeds)} cells asked for; "
                                f"at most {max_images} at once.")
        return {"layers": _layer_range(self.layers, mixing_presets(G), G.num_ws, "layers")}


NOISE_GROUPS = ("all", "coarse", "fine", "none")


@dataclass(frozen=True)
class NoiseSettings(Settings):
    """What the per-layer noise changes, for one face."""
    kind: ClassVar[str] = "noise_study"
    tab: ClassVar[str] = "noise"

    seed: int = setting(1, "the one face to study", _one_seed, kind="seed", low=0, high=MAX_SEED)
    num_samples: int = setting(8, "noise realisations", _whole("The number of noise samples", 2, MAX_IMAGES), kind="int",
                               low=2, high=16, step=1, flag="--samples", query="samples")
    layers: object = setting("all", "noise on layers: all, coarse, fine, none, or a range start-stop of noise layers",
                             lambda v: _layers(v, NOISE_GROUPS), kind="layers", choices=NOISE_GROUPS)
    strength: float = setting(1.0, "multiplier of the learned noise strengths", _number("Noise strength", 0, 10),
                              kind="float", low=0.0, high=3.0, step=0.1)
    psi: float = setting(0.7, **PSI)
    noise_seed: int = setting(0, **dict(NOISE_SEED, help="seed of the first noise realisation; the others follow"))
    class_idx: int = setting(None, **CLASS)
    w_file: object = setting(None, **dict(W_FILE, help="the first face of a W file (.npz in NVIDIA's layout) "
                                          "instead of the seed"))
    batch_size: int = setting(None, **BATCH)

    def image_count(self):
        return self.num_samples + 4  # and the comparison of layer groups

    def check_model(self, G, max_images, max_frames):
        if not G.synthesis.has_noise:
            raise SettingsError(f"This model ({G.family}) has no noise inputs, so there is nothing to study; "
                                "use a StyleGAN2 model.")
        if self.num_samples > max_images:
            raise SettingsError(f"The number of noise samples must be from 2 to {max_images}.")
        return {"layers": _layer_range(self.layers, noise_layer_groups(G), len(G.synthesis.noise_layers),
                                       "noise layers")}


@dataclass(frozen=True)
class VideoSettings(Settings):
    """A smooth walk through the faces of keyframe seeds."""
    kind: ClassVar[str] = "video"
    tab: ClassVar[str] = "video"

    seeds: tuple = setting("1, 2, 3", "keyframe seeds", _seed_list, **SEEDS)
    frames_per_transition: int = setting(24, "frames per transition", _whole("Frames per transition", 1),
                                         kind="int", low=2, high=120, step=1, flag="--frames", query="frames")
    fps: float = setting(24.0, "frames per second", _number("Frames per second", 1, 120), kind="float",
                         low=5, high=60, step=1)
    space: str = setting("w", "interpolate in z (spherical) or w (linear)", _choice("Interpolation space", ("z", "w")),
                         kind="choice", choices=("z", "w"))
    easing: str = setting("smooth", "linear or smooth", _choice("Easing", ("linear", "smooth")), kind="choice",
                          choices=("linear", "smooth"))
    loop: bool = setting(True, "loop back to the first face", bool, kind="bool")
    psi: float = setting(0.7, **PSI)
    noise_mode: str = setting("const", **dict(NOISE_MODE, in_app=False))
    class_idx: int = setting(None, **CLASS)
    w_file: object = setting(None, **dict(W_FILE, help="keyframes from a W file (.npz in NVIDIA's layout), "
                                          "before the seeds' faces"))
    batch_size: int = setting(None, **BATCH)

    def __post_init__(self):
        super().__post_init__()
        if self.keyframe_count() < 2:
            raise SettingsError("A video needs at least two keyframes (seeds, or faces of a W file).")
        if self.w_file is not None and self.space == "z":
            raise SettingsError("A W file's faces have no z: walk in W (space w).")

    def keyframe_count(self):
        from_file = 0 if self.w_file is None or self.w_file.arrays is None else len(self.w_file.arrays["w"])
        return from_file + len(self.seeds)

    def frame_count(self):
        transitions = self.keyframe_count() if self.loop else self.keyframe_count() - 1
        return transitions * self.frames_per_transition + (0 if self.loop else 1)

    streamed: ClassVar[bool] = True

    def image_count(self):
        return self.frame_count()

    def check_model(self, G, max_images, max_frames):
        _check_count(self.seeds, max_frames)
        if self.frame_count() > max_frames:
            raise SettingsError(f"That video would have {self.frame_count()} frames; at most {max_frames}: "
                                "use fewer seeds or frames.")
        return {}


EDIT_LAYERS = ("all", "coarse", "middle", "fine")
MAX_STRENGTH = 20  # standard deviations of W: far past it, every face is the same smear
MAX_COMPONENT = 4096


def parse_components(value):
    """'0' or '0, 3*-0.5' -> ((0, 1.0), (3, -0.5)): directions by index (strongest first from 0), each
    with its weight in the combination."""
    if isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_)):
        value = str(value)
    if isinstance(value, str):
        parts = [p.strip() for p in value.replace(";", ",").split(",") if p.strip()]
        pairs = []
        for part in parts:
            m = re.fullmatch(r"([0-9]{1,6})\s*(?:\*\s*([-+]?[0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?))?", part)
            if not m:
                raise SettingsError(f"{part!r} is not a direction: write indices with optional weights, like 0 or "
                                    "0, 3*-0.5.")
            pairs.append((int(m.group(1)), float(m.group(2)) if m.group(2) else 1.0))
        value = pairs
    try:
        pairs = tuple((int(i), float(weight)) for i, weight in value)
    except (TypeError, ValueError, OverflowError):
        raise SettingsError(f"{value!r} is not a list of directions: write them like 0 or 0, 3*-0.5.") from None
    if not pairs:
        raise SettingsError("No direction given: write its index, like 0 (the strongest).")
    for index, weight in pairs:
        if not 0 <= index < MAX_COMPONENT or not math.isfinite(weight) or abs(weight) > 10:
            raise SettingsError(f"Direction {index}*{weight} is out of range: indices from 0, weights from -10 to 10.")
    return pairs


def _components_text(pairs):
    return ", ".join(str(i) if w == 1 else f"{i}*{w:g}" for i, w in pairs)


@dataclass(frozen=True)
class EditSettings(Settings):
    """A face moved along semantic directions: a strip from -strength to +strength."""
    kind: ClassVar[str] = "edit"
    tab: ClassVar[str] = "edit"

    seed: int = setting(1, "the start face's seed", _one_seed, kind="seed", low=0, high=MAX_SEED)
    w_file: object = setting(None, **dict(W_FILE, help="start from a W file (.npz in NVIDIA's layout) instead of "
                                          "a seed"))
    w_index: int = setting(0, "which face of the W file", _whole("The W file's face index", 0), kind="int",
                           in_app=False)
    method: str = setting("sefa", "directions: sefa (from the style weights), ganspace (principal components of "
                          "W) or file", _choice("Method", ("sefa", "ganspace", "file")), kind="choice",
                          choices=("sefa", "ganspace", "file"))
    directions_file: object = setting(None, "a directions file (.npz with directions [k, w_dim], or one direction "
                                      "as .npy) for method file", _given_file(_read_directions), kind="file",
                                      flag="--directions")
    components: tuple = setting("0", "directions to combine, strongest first from 0, each with an optional weight: "
                                "0, or 0, 3*-0.5", parse_components, kind="components", query="dirs")
    layers: object = setting("all", "layers to move (and, for sefa, to find directions in): all, coarse, middle, "
                             "fine, or a range start-stop", lambda v: _layers(v, EDIT_LAYERS), kind="layers",
                             choices=EDIT_LAYERS)
    strength: float = setting(3.0, "strength at the strip's ends, in standard deviations of W along the direction",
                              _number("Strength", 0, MAX_STRENGTH, " standard deviations of W (3 is a lot)"),
                              kind="float", low=0.0, high=10.0, step=0.5)
    steps: int = setting(7, "faces in the strip", _whole("The number of faces in the strip", 2, 31), kind="int",
                         low=2, high=15, step=1)
    video: bool = setting(False, "also a looping video of the sweep (MP4)", bool, kind="bool")
    psi: float = setting(0.7, **PSI)
    truncation_cutoff: int = setting(None, **CUTOFF)
    noise_mode: str = setting("const", **dict(NOISE_MODE, in_app=False))
    noise_seed: int = setting(0, **NOISE_SEED)
    class_idx: int = setting(None, **CLASS)
    samples: int = setting(10_000, "mapped samples for ganspace, and to measure W's spread",
                           _whole("The number of samples", 100, 200_000), kind="int", in_app=False)
    batch_size: int = setting(None, **BATCH)

    def __post_init__(self):
        super().__post_init__()
        if self.method == "file" and self.directions_file is None:
            raise SettingsError("Method file needs a directions file (.npz or .npy).")

    def image_count(self):
        return self.steps

    def check_model(self, G, max_images, max_frames):
        if self.w_file is not None and self.w_index >= len(self.w_file.arrays["w"]):
            raise SettingsError(f"{self.w_file.name} holds {len(self.w_file.arrays['w'])} faces; face "
                                f"{self.w_index} does not exist (they count from 0).")
        if self.steps > max_images:
            raise SettingsError(f"The number of faces in the strip must be from 2 to {max_images}.")
        presets = dict(mixing_presets(G), all=(0, G.num_ws, "all layers"))
        return {"layers": _layer_range(self.layers, presets, G.num_ws, "layers")}


@dataclass(frozen=True)
class LayersSettings(Settings):
    """A look inside one synthesis layer, for one face."""
    kind: ClassVar[str] = "layers"
    tab: ClassVar[str] = "layers"

    seed: int = setting(1, "the face to look inside", _one_seed, kind="seed", low=0, high=MAX_SEED)
    w_file: object = setting(None, **dict(W_FILE, help="the face of a W file (.npz in NVIDIA's layout) instead "
                                          "of a seed"))
    layer: int = setting(4, "the layer, counted from 0 at 4x4 (the output lists them)", _whole("Layer", 0, 64),
                         kind="int", low=0, high=20, step=1)
    channels: int = setting(16, "the strongest channels to show", _whole("The number of channels", 1, 64),
                            kind="int", low=4, high=64, step=4)
    psi: float = setting(0.7, **PSI)
    noise_mode: str = setting("const", **dict(NOISE_MODE, in_app=False))
    class_idx: int = setting(None, **CLASS)
    batch_size: int = setting(None, **BATCH)

    def image_count(self):
        return 1


@dataclass(frozen=True)
class ProjectSettings(Settings):
    """A photo's face found in W or W+. The photo itself is not a setting: it never enters a recipe or a link."""
    kind: ClassVar[str] = "project"
    tab: ClassVar[str] = "photo"

    space: str = setting("w+", "w: one w for all layers, as NVIDIA's projector (edits best); w+: one w per layer "
                         "(closest likeness)", _choice("Space", ("w", "w+")), kind="choice", choices=("w", "w+"))
    steps: int = setting(0, "optimisation steps (0: a few minutes' worth on a CPU, 300 up to 128 px, 150 at 256 px, "
                         "100 above)", _whole("The number of steps", 0, 5000), kind="int", low=0, high=1000, step=50)
    aligned: bool = setting(False, "the photo is already an aligned face crop: skip face detection", bool,
                            kind="bool")
    lpips: bool = setting(True, "use LPIPS (VGG16) too when its weights are on this machine", bool, kind="bool",
                          in_app=False)
    class_idx: int = setting(None, **CLASS)
    seed: int = setting(0, "seed of the noise added to w early in the optimisation",
                        _whole("Seed", 0, MAX_SEED), kind="int", in_app=False)
    batch_size: int = setting(None, **BATCH)

    def image_count(self):
        return 1

    def check_model(self, G, max_images, max_frames):
        if self.steps:
            return {}
        return {"steps": 300 if G.img_resolution <= 128 else 150 if G.img_resolution <= 256 else 100}


TASKS = {cls.kind: cls for cls in (GenerateSettings, MixSettings, NoiseSettings, VideoSettings, EditSettings,
                                   LayersSettings, ProjectSettings)}


def from_recipe(recipe):
    """The settings object a recipe describes."""
    kind = recipe.get("kind") if isinstance(recipe, dict) else None
    if not isinstance(kind, str) or kind not in TASKS:
        raise SettingsError(f"Recipes of kind {kind!r} cannot be rebuilt.")
    return TASKS[kind].from_recipe(recipe)


# ----------------------------------------------------------------------------- checks against a model

def mixing_presets(G):
    """{name: (start, stop, label)}: the style inputs each style-mixing preset takes from the columns.

    By resolution as in the StyleGAN paper (coarse 4-8 px, middle 16-32, fine 64 up) where the
    model's style inputs follow resolutions; otherwise (StyleGAN3) thirds of its layers.
    """
    n = G.num_ws
    if not G.synthesis.styles_follow_resolution:
        a, b = round(n / 3), round(2 * n / 3)
        note = "(thirds of its layers: this model's layers are not tied to resolutions)"
        return {"coarse": (0, a, f"layers 0-{a - 1} {note}"), "middle": (a, b, f"layers {a}-{b - 1} {note}"),
                "fine": (b, n, f"layers {b}-{n - 1} {note}")}
    res = G.synthesis.ws_resolutions
    presets = {}
    for name, lo, hi in (("coarse", 4, 8), ("middle", 16, 32), ("fine", 64, 1 << 30)):
        idx = [i for i, r in enumerate(res) if lo <= r <= hi]
        if idx:
            top = min(hi, G.img_resolution)
            presets[name] = (idx[0], idx[-1] + 1, f"layers {idx[0]}-{idx[-1]} ({lo}²-{top}²)")
    return presets


def noise_layer_groups(G):
    """{name: (start, stop, label)} over the noise layers, as in the paper's Figure 5.

    Coarse and fine split at 32 px for models of 128 px and more (the paper's 4-32 / 64-1024),
    at a quarter of the resolution for smaller ones.
    """
    res = [layer.resolution for layer in G.synthesis.noise_layers]
    n = len(res)
    split = max(4, min(32, G.img_resolution // 4))
    k = sum(1 for r in res if r <= split)
    return {"all": (0, n, f"all {n} noise layers"), "coarse": (0, k, f"layers 0-{k - 1} (4²-{split}²)"),
            "fine": (k, n, f"layers {k}-{n - 1} ({2 * split}²-{G.img_resolution}²)"), "none": (0, 0, "no noise")}


def _layer_range(layers, groups, count, what):
    if isinstance(layers, str) and layers in groups:
        return groups[layers][:2]
    if isinstance(layers, str) and layers in (MIX_PRESETS + NOISE_GROUPS):
        raise SettingsError(f"This model has no {layers!r} {what} to mix; choose from {', '.join(groups)} or a range.")
    return parse_layer_range(layers, count)


def w_file_ws(G, given):
    """The ws of a W file, checked to fit model G."""
    w = given.needed("W")["w"]
    if w.shape[1:] != (G.num_ws, G.w_dim):
        raise SettingsError(f"{given.name} holds ws of shape [{w.shape[0]}, {w.shape[1]}, {w.shape[2]}], but this "
                            f"model takes [N, {G.num_ws}, {G.w_dim}] (num_ws, w_dim): it was made for another model.")
    return w


def check_class(G, class_idx):
    if G.c_dim == 0:
        if class_idx is not None:
            raise SettingsError("This model is unconditional: set the class to none (-1, or leave it empty).")
    elif class_idx is None:
        raise SettingsError(f"This model is conditional: choose a class from 0 to {G.c_dim - 1}.")
    elif not 0 <= class_idx < G.c_dim:
        raise SettingsError(f"Class {class_idx!r} does not exist: this model has classes 0 to {G.c_dim - 1}.")


def _check_count(seeds, limit):
    if len(seeds) > limit:
        raise SettingsError(f"{len(seeds)} seeds asked for; at most {limit} at once.")
