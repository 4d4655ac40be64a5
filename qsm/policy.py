"""A run's trained policy: saved as policy.pt when the run completes, loaded without its replay
buffer or optimisers, sampled again at any states, or evaluated on fresh episodes.

    python -m qsm.policy probe RUN_DIR [--states FILE] [--samples N] [--out FILE.npz] [--compare]
    python -m qsm.policy evaluate RUN_DIR --episodes N [--seed K] [--out FILE.csv]

RUN_DIR is a seed directory (.../seed<k>). `probe` draws N actions per state from the policy and
the behaviour distribution (policy + exploration noise), at the run's probe states unless
--states gives others (.npy of shape (P, obs_dim), or .npz with an array `states`). Without
--stream-seed it draws from the seed's acting stream as it was when the run drew its probe
samples, so at the run's own states and sample count it reproduces probe_actions.npz bit for bit
on CPU (--compare checks this). `evaluate` runs the policy as evaluations do (the agent's 'eval'
mode) on N fresh episodes seeded from --seed, none of which the run saw.

Both compute as the run did: with its number of torch threads and on its device (config.json's
provenance: torch_threads, device), whatever OMP_NUM_THREADS says, unless --threads or --device
say otherwise. What this process cannot match (another device, a CPU whose kernels round
differently, another torch, other threads) is said before --compare compares, and as a note on
stderr by `evaluate`: the bits may then differ from the run's.

policy.pt holds the policy modules' weights of one seed (the agent's POLICY_MODULES: QSM's
denoiser, SAC's and TD3's actor), the run's identity, the observation and action sizes, and the
seed's acting stream before the probe draws. A file whose identity differs from the run's
config.json is refused in one line.
"""
from __future__ import annotations

import argparse
import io
import json
import sys
from pathlib import Path

import numpy as np

from qsm.declare.cli import HelpFormatter

POLICY_FORMAT = 1
IDENTITY_KEYS = ("algo", "task", "seed", "run_id", "code_version")


class PolicyError(ValueError):
    """A policy file that is missing, unreadable or not the run's: one line for the user."""


def save_policy(path, identity: dict, modules: dict, streams: dict, env: dict) -> None:
    """Write one seed's policy atomically (qsm.contract.rundir)."""
    import torch

    from qsm.contract.rundir import _json_default, atomic_write_bytes
    identity = json.loads(json.dumps(identity, default=_json_default))
    state = {"format": POLICY_FORMAT, "identity": identity, "env": dict(env),
             "modules": modules, "streams": streams}
    buf = io.BytesIO()
    torch.save(state, buf)
    atomic_write_bytes(path, buf.getvalue())


class LoadedPolicy:
    """A run's agent rebuilt for one seed with its trained policy modules (the critics are never
    used; replay and optimiser state are not kept)."""

    def __init__(self, seed_dir, device=None, as_in_block: bool = False, threads=None):
        import torch

        from qsm.declare.registry import AgentError, get_agent, resolve_config
        self.dir = Path(seed_dir)
        self.config = _read_config(self.dir)
        # the run's numerics first: torch's thread pools before any work that uses them
        self.device, self.threads, self.notes = use_run_numerics(self.config, device, threads)
        path = self.dir / "policy.pt"
        if not path.is_file():
            raise PolicyError(f"{path} is missing: only complete runs of contract version 3 "
                              f"that learned keep their policy")
        try:
            state = torch.load(path, map_location="cpu", weights_only=False)
        except Exception as e:
            raise PolicyError(f"{path} cannot be read ({type(e).__name__}: {e})") from None
        if not isinstance(state, dict) or state.get("format") != POLICY_FORMAT:
            raise PolicyError(f"{path} is not a policy file of format {POLICY_FORMAT}")
        if "official_params" in state.get("modules", {}):
            raise PolicyError(f"{path} holds an official JAX learner's parameters (a flax state "
                              f"dict of numpy arrays under modules.official_params): load them "
                              f"with the official code; qsm.policy samples the suite's agents")
        theirs = {k: state["identity"].get(k) for k in IDENTITY_KEYS}
        ours = {k: self.config.get(k) for k in IDENTITY_KEYS}
        if theirs != ours:
            differ = ", ".join(f"{k} {theirs[k]!r} != {ours[k]!r}" for k in IDENTITY_KEYS
                               if theirs[k] != ours[k])
            raise PolicyError(f"{path} belongs to another run than {self.dir / 'config.json'} "
                              f"({differ})")
        try:
            agent_cls = get_agent(self.config["algo"])
            cfg = resolve_config(agent_cls, self.config["task"], self.config["hparams"])
        except AgentError as e:
            raise PolicyError(f"{self.dir}: cannot rebuild the agent: {e}") from None
        self.seed = int(self.config["seed"])
        self.env = state["env"]
        # Batched matrix products of a block of S seeds and of one seed may round differently.
        # as_in_block rebuilds the agent at the run's block width, this seed at its place in it
        # (every place holds its weights), so that the run's own kernels redraw its samples.
        block = [int(s) for s in self.config.get("block", {}).get("seeds", [self.seed])]
        seeds = block if as_in_block and self.seed in block else [self.seed]
        self.index = seeds.index(self.seed)
        self.agent = agent_cls(self.env["obs_dim"], self.env["act_dim"], seeds, cfg, self.device)
        self.agent.load_policy_state({
            name: {k: v.expand(len(seeds), *v.shape[1:]).clone() for k, v in module.items()}
            for name, module in state["modules"].items()})
        self.agent.eval()
        self.run_streams = state["streams"]

    def use_run_stream(self) -> None:
        """Acting noise from where the run's probe draws started."""
        streams = self.agent.act_noise.state_dict()
        theirs = self.run_streams["act"]
        if theirs.numel() != streams[self.index].numel():
            # a CUDA generator's state (Philox seed and offset) cannot seed a CPU generator, nor
            # the other way round
            trained_on = self.config.get("provenance", {}).get("device", "another device")
            raise PolicyError(
                f"{self.dir}: the run drew its probe samples from a random stream on "
                f"{trained_on}, which a generator on {self.device.type} cannot continue: redraw "
                f"them with --device {trained_on.split(':')[0]}, or draw new samples with "
                f"--stream-seed K")
        streams[self.index] = theirs
        self.agent.act_noise.load_state_dict(streams)

    def use_fresh_stream(self, purpose: str) -> None:
        from qsm.harness.seeding import SeedStreams
        self.agent.act_noise = SeedStreams(self.agent.seeds, purpose, self.device)

    def probe(self, states: np.ndarray, samples: int):
        """(P, N, act_dim) policy and behaviour samples at states (P, obs_dim)."""
        import torch
        st = torch.as_tensor(np.asarray(states, np.float32), device=self.device)
        st = st.unsqueeze(0).expand(len(self.agent.seeds), -1, -1).contiguous()
        policy, behaviour = self.agent.probe_samples(st, samples)
        return policy[self.index].cpu().numpy(), behaviour[self.index].cpu().numpy()

    def evaluate(self, episodes: int, seed: int) -> np.ndarray:
        """Returns of `episodes` fresh episodes whose environments and acting noise are seeded
        from `seed` (streams of their own: none is one the run used)."""
        import torch

        from qsm.harness.seeding import derive_seed
        from qsm.harness.evaluation import eval_returns
        from qsm.harness.vecenv import EnvBlock
        purpose = f"policy_evaluate/{seed}"
        self.use_fresh_stream(f"{purpose}/act")
        envs = EnvBlock(self.config["task"], [derive_seed(seed, f"{purpose}/env")] * episodes)
        try:
            def act(obs):
                o = torch.as_tensor(obs.reshape(1, episodes, -1), device=self.device)
                return self.agent.act(o, "eval").cpu().numpy().reshape(episodes, -1)
            return eval_returns(envs, [self.seed], episodes, 0,
                                lambda s, p: derive_seed(seed, f"{purpose}/{p}"), act)[0]
        finally:
            envs.close()


def _read_config(seed_dir: Path) -> dict:
    path = seed_dir / "config.json"
    if not path.is_file():
        raise PolicyError(f"{path} is missing: give a seed directory of a run (.../seed<k>)")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise PolicyError(f"{path} is not valid JSON ({e.msg})") from None


def use_run_numerics(config: dict, device=None, threads=None):
    """Compute as the run did: its torch threads and its device, from config.json's provenance
    (--threads and --device, when given, instead). Sets torch's threads (intra-op; the agents use
    no inter-op parallelism) and, on CUDA, the deterministic kernels training uses. Returns
    (torch.device, threads, notes): notes say what differs from the run's settings."""
    import torch

    from qsm.runtime.numerics import deterministic_cuda
    prov = config.get("provenance") or {}
    notes = []
    run_threads = prov.get("torch_threads")
    if threads is not None:
        if threads <= 0:
            raise PolicyError(f"--threads must be positive, got {threads}")
        if run_threads and threads != run_threads:
            notes.append(f"{threads} torch thread(s) (--threads), the run used {run_threads}")
    elif run_threads:
        threads = int(run_threads)
    else:
        notes.append("the run's config.json does not record its torch threads")
    if threads:
        torch.set_num_threads(int(threads))
    ran_on = str(prov.get("device") or "cpu")
    if device is None:
        device = ran_on
        if torch.device(ran_on).type == "cuda" and not torch.cuda.is_available():
            device = "cpu"  # (the note below says so)
    try:
        dev = torch.device(device)
    except RuntimeError:
        raise PolicyError(f"--device must be cpu, cuda or cuda:N, got {device!r}") from None
    if dev.type not in ("cpu", "cuda"):
        raise PolicyError(f"--device must be cpu, cuda or cuda:N, got {device!r}")
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise PolicyError(f"--device {device}: CUDA is not available")
        deterministic_cuda()  # before the first CUDA operation, as in training
    if dev.type != torch.device(ran_on).type:
        notes.append(f"on the {dev.type}, the run trained on {ran_on}"
                     + ("" if dev.type == "cuda" or torch.cuda.is_available()
                        else " (CUDA is not available here)"))
    return dev, threads, notes


def numerics_differences(config: dict, device, notes=()) -> list[str]:
    """Why this process may not compute the run's bits: `notes` of use_run_numerics, then another
    torch, another GPU model, or (on the CPU) kernels that round differently (qsm.runtime.numerics'
    fingerprint; it costs a second or two, so only --compare and evaluate ask)."""
    import torch

    from qsm.runtime import numerics
    prov = config.get("provenance") or {}
    differ = list(notes)
    theirs = (prov.get("packages") or {}).get("torch")
    if theirs and theirs != torch.__version__:
        differ.append(f"torch {torch.__version__}, the run's {theirs}")
    ran_on = torch.device(str(prov.get("device") or "cpu"))
    if device.type == ran_on.type == "cpu":
        ours, run = numerics.fingerprint(), prov.get("cpu_numerics")
        if run and ours != run:
            differ.append(f"this CPU's float32 kernels round differently from the run's machine's "
                          f"(numerics fingerprint {ours}, the run's {run})")
    elif device.type == ran_on.type == "cuda":
        ours, run = torch.cuda.get_device_name(device), prov.get("device_name")
        if run and ours != run:
            differ.append(f"GPU {ours}, the run's {run}")
    return differ


def _load_states(path, obs_dim: int) -> np.ndarray:
    path = Path(path)
    try:
        data = np.load(path)
        states = data["states"] if isinstance(data, np.lib.npyio.NpzFile) else data
    except (OSError, ValueError, KeyError) as e:
        raise PolicyError(f"--states {path}: cannot read states ({type(e).__name__}: {e}); give "
                          f"a .npy array (P, {obs_dim}) or a .npz with an array 'states'") from None
    states = np.asarray(states, np.float32)
    if states.ndim != 2 or states.shape[1] != obs_dim or not len(states):
        raise PolicyError(f"--states {path}: shape {states.shape}, expected (P, {obs_dim})")
    if not np.isfinite(states).all():
        raise PolicyError(f"--states {path}: states must be finite")
    return states


# ---------------------------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------------------------

def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m qsm.policy", description=__doc__,
                                formatter_class=HelpFormatter)
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND",
                           help="probe or evaluate (python -m qsm.policy COMMAND --help)")
    probe = sub.add_parser("probe", help="draw action samples of the trained policy",
                           formatter_class=HelpFormatter)
    probe.add_argument("run_dir", help="a seed directory of a complete run (.../seed<k>)")
    probe.add_argument("--states", default=None,
                       help="states to probe (.npy (P, obs_dim) or .npz with 'states'; default: "
                            "the run's probe states)")
    probe.add_argument("--samples", type=int, default=None,
                       help="samples per state (default: the run's probe_samples)")
    probe.add_argument("--stream-seed", type=int, default=None,
                       help="draw from a fresh stream of this seed (default: the run's own "
                            "acting stream, which reproduces its probe samples)")
    probe.add_argument("--out", default=None,
                       help="write states, policy, behaviour to this .npz (default: only print "
                            "a summary)")
    probe.add_argument("--compare", action="store_true",
                       help="compare with the run's probe_actions.npz; exit 1 if they differ")
    evaluate = sub.add_parser("evaluate", help="evaluate the trained policy on fresh episodes",
                              formatter_class=HelpFormatter)
    evaluate.add_argument("run_dir", help="a seed directory of a complete run (.../seed<k>)")
    evaluate.add_argument("--episodes", type=int, default=10, help="fresh episodes to run")
    evaluate.add_argument("--seed", type=int, default=0,
                          help="seed of the episodes and of the acting noise")
    evaluate.add_argument("--out", default=None,
                          help="write episode, return to this .csv (default: only print a "
                               "summary)")
    for sp in (probe, evaluate):
        sp.add_argument("--device", default=None,
                        help="cpu, cuda or cuda:N (default: the run's device, or the cpu where "
                             "it trained on CUDA and none is here)")
        sp.add_argument("--threads", type=int, default=None,
                        help="torch threads (default: the run's, as its config.json records; "
                             "another number may change the bits)")
    return p


def probe_command(a) -> int:
    from qsm.harness.probes import probe_states
    policy = LoadedPolicy(a.run_dir, a.device, as_in_block=True, threads=a.threads)
    budget = policy.config["budget"]
    if a.states:
        states = _load_states(a.states, policy.env["obs_dim"])
    else:
        states = probe_states(policy.config["task"], int(budget["probe_states"]))
    samples = a.samples or int(budget["probe_samples"])
    if samples <= 0:
        raise PolicyError(f"--samples must be positive, got {samples}")
    if a.stream_seed is None:
        policy.use_run_stream()
    else:
        policy.use_fresh_stream(f"policy_probe/{a.stream_seed}")
    pol, beh = policy.probe(states, samples)
    if a.out:
        from qsm.contract.rundir import atomic_write_npz
        atomic_write_npz(a.out, states=states, policy=pol, behaviour=beh)
    for i in range(len(states)):
        on_bound = float((np.abs(pol[i]) >= 1 - 1e-3).mean())
        print(f"state {i}: policy mean {np.array2string(pol[i].mean(0), precision=3)} "
              f"std {np.array2string(pol[i].std(0), precision=3)}, {on_bound:.1%} of coordinates "
              f"on a bound")
    if a.compare:
        differ = numerics_differences(policy.config, policy.device, policy.notes)
        if differ:
            print("cannot compute as the run did, so the bits may differ: " + "; ".join(differ))
        else:
            print(f"computed as the run did: on the {policy.device}, {policy.threads} torch "
                  f"thread(s)")
        with np.load(Path(a.run_dir) / "probe_actions.npz") as z:
            run = {k: z[k] for k in ("states", "policy", "behaviour")}
        ours = {"states": np.asarray(states, np.float32), "policy": pol, "behaviour": beh}
        differ = [k for k in run if run[k].shape != ours[k].shape
                  or not np.array_equal(run[k], ours[k])]
        if differ:
            print(f"differs from the run's probe_actions.npz in {', '.join(differ)}")
            return 1
        print("identical to the run's probe_actions.npz")
    return 0


def evaluate_command(a) -> int:
    if a.episodes <= 0:
        raise PolicyError(f"--episodes must be positive, got {a.episodes}")
    policy = LoadedPolicy(a.run_dir, a.device, threads=a.threads)
    for note in numerics_differences(policy.config, policy.device, policy.notes):
        print(f"note: not as the run computed: {note}", file=sys.stderr)
    returns = policy.evaluate(a.episodes, a.seed)
    c = policy.config
    print(f"{c['algo']} on {c['task']}, run {c['run_id']} seed {c['seed']}: return "
          f"{returns.mean():.2f} +- {returns.std():.2f} over {a.episodes} episodes (seed {a.seed})")
    if a.out:
        from qsm.contract.rundir import atomic_write_csv
        atomic_write_csv(a.out, ("episode", "return"),
                         [{"episode": e, "return": float(r)} for e, r in enumerate(returns)])
    return 0


def main(argv=None) -> int:
    a = build_parser().parse_args(argv)
    from qsm.harness.envs import TaskError
    try:
        return probe_command(a) if a.command == "probe" else evaluate_command(a)
    except (PolicyError, TaskError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
