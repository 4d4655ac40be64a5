"""Seeds in a block never influence each other, and a block of one seed is the plain algorithm."""
import copy

import pytest
import torch

from qsm.declare.registry import get_agent, resolve_config
from qsm.harness.replay import SeedBatchedReplay
from qsm.harness.seeding import SeedStreams, derive_seed
from qsm.learners.nets import BatchedLinear, _NarrowBatchedLinear
from qsm.runtime.timing import PhaseTimer
from test_agents import OBS, batch, make


def params_of(agent, seed_index):
    return {n: p.detach()[seed_index].clone() for n, p in agent.named_parameters() if p.dim() >= 1
            and p.shape[0] == len(agent.seeds)} | _critic_params(agent, seed_index)


def _critic_params(agent, i):
    return {f"critic.{n}": p.detach()[agent.critic.members_of(i)].clone()
            for n, p in agent.critic.named_parameters()}


def assert_same(a, b):
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


@pytest.mark.parametrize("algo", ["qsm", "sac", "td3", "dql"])
def test_changing_another_seeds_data_leaves_seed_untouched(algo):
    agent = make(algo, seeds=(0, 1, 2))
    other = copy.deepcopy(agent)
    b1 = batch(3)
    b2 = {k: v.clone() for k, v in b1.items()}
    for k in b2:
        b2[k][2] = b2[k][2] * 5 + 1  # only seed index 2 sees different data
    for _ in range(2):
        agent.update(b1, PhaseTimer())
        other.update(b2, PhaseTimer())
    assert_same(params_of(agent, 0), params_of(other, 0))
    assert_same(params_of(agent, 1), params_of(other, 1))
    assert not torch.equal(params_of(agent, 2)["critic.net.layers.0.weight"],
                           params_of(other, 2)["critic.net.layers.0.weight"])


@pytest.mark.parametrize("algo", ["qsm", "sac", "td3", "dql"])
def test_changing_another_seeds_init_leaves_seed_untouched(algo):
    a = make(algo, seeds=(0, 1, 2))
    b = make(algo, seeds=(0, 1, 9))  # seed index 2 initialised and noised differently
    assert_same(params_of(a, 0), params_of(b, 0))
    data = batch(3)
    for _ in range(2):
        a.update(data, PhaseTimer())
        b.update(data, PhaseTimer())
    assert_same(params_of(a, 0), params_of(b, 0))
    assert_same(params_of(a, 1), params_of(b, 1))


@pytest.mark.parametrize("algo", ["qsm", "sac", "td3", "dql"])
def test_block_of_one_is_the_ordinary_algorithm(algo):
    block = make(algo, seeds=(3, 4, 5))
    single = make(algo, seeds=(4,))
    assert_same(params_of(block, 1), params_of(single, 0))
    data = batch(3)
    one = {k: v[1:2].clone() for k, v in data.items()}
    for _ in range(3):
        block.update(data, PhaseTimer())
        single.update(one, PhaseTimer())
    pb, ps = params_of(block, 1), params_of(single, 0)
    for k in pb:
        torch.testing.assert_close(pb[k], ps[k], rtol=1e-5, atol=1e-6)
    obs = torch.randn(1, 4, OBS)
    torch.testing.assert_close(block.act(obs.expand(3, -1, -1).contiguous(), "eval")[1],
                               single.act(obs, "eval")[0], rtol=1e-5, atol=1e-6)


def test_streams_depend_only_on_seed_and_purpose():
    a = SeedStreams([1, 2], "update").randn(4)
    b = SeedStreams([2, 1, 7], "update").randn(4)
    assert torch.equal(a[0], b[1]) and torch.equal(a[1], b[0])
    assert not torch.equal(SeedStreams([1], "act").randn(4), SeedStreams([1], "update").randn(4))
    assert derive_seed(3, "train_env") != derive_seed(3, "eval_env")
    assert derive_seed(3, "train_env") == derive_seed(3, "train_env")


def test_replay_per_seed_sampling_and_wraparound():
    r = SeedBatchedReplay([0, 1], obs_dim=2, act_dim=1, capacity=3, device="cpu")
    for i in range(5):
        r.add(torch.full((2, 2), float(i)), torch.zeros(2, 1), torch.tensor([i, 10 + i]),
              torch.zeros(2, 2), torch.tensor([0.0, 1.0]))
    assert r.size == 3
    assert sorted(r.storage["reward"][0].tolist()) == [2, 3, 4]
    assert r.storage["mask"][1].tolist() == [0, 0, 0]
    s = r.sample(50)
    assert s["obs"].shape == (2, 50, 2) and set(s["reward"][1].tolist()) <= {12.0, 13.0, 14.0}
    # seed 0's indices do not depend on seed 1 being in the block
    r1 = SeedBatchedReplay([0], 2, 1, 3, "cpu")
    r1.size = 3
    assert torch.equal(SeedBatchedReplay([0, 1], 2, 1, 3, "cpu").streams.randint(3, 8)[0],
                       r1.streams.randint(3, 8)[0])


def test_resolve_config_rejects_bad_values():
    from qsm.declare.registry import AgentError, parse_overrides
    cls = get_agent("qsm")
    with pytest.raises(AgentError, match="unknown hyperparameter"):
        resolve_config(cls, "cheetah_run", {"Mq": 3})
    with pytest.raises(AgentError, match="T=2.5 is invalid: T must be an integer"):
        resolve_config(cls, "cheetah_run", {"T": 2.5})
    with pytest.raises(AgentError, match="malformed"):
        parse_overrides(["M_q"])
    assert parse_overrides(["T=3", "actor_hidden=[16, 16]"]) == {"T": 3, "actor_hidden": [16, 16]}
    assert resolve_config(cls, "x", {"actor_hidden": [16, 16]}).actor_hidden == (16, 16)


@pytest.mark.parametrize("members,out_dim", [(1, 1), (2, 1), (2, 6), (5, 16), (3, 17)])
def test_batched_linear_narrow_path_is_baddbmm(members, out_dim):
    """Layers with few outputs take transposed products on CPU; forward and every gradient are
    those of the plain batched matmul, and the double-precision gradients pass gradcheck."""
    gens = [torch.Generator().manual_seed(m) for m in range(members)]
    layer = BatchedLinear(gens, 12, out_dim)
    assert layer.narrow == (out_dim <= 16)
    with torch.no_grad():
        layer.bias.normal_()
    x = torch.randn(members, 9, 12, requires_grad=True)
    g = torch.randn(members, 9, out_dim)
    y = layer(x)
    grads = torch.autograd.grad(y, (x, layer.weight, layer.bias), g)
    ref = torch.baddbmm(layer.bias, x, layer.weight)
    ref_grads = torch.autograd.grad(ref, (x, layer.weight, layer.bias), g)
    torch.testing.assert_close(y, ref, rtol=1e-5, atol=1e-5)
    for a, b in zip(grads, ref_grads):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)
    xd = torch.randn(members, 4, 12, dtype=torch.float64, requires_grad=True)
    w = torch.randn(members, 12, out_dim, dtype=torch.float64, requires_grad=True)
    b = torch.randn(members, 1, out_dim, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(_NarrowBatchedLinear.apply, (xd, w, b))


def test_allocator_settings_take_on_linux():
    import sys

    from qsm.runtime.allocator import keep_freed_memory
    assert keep_freed_memory() == sys.platform.startswith("linux")
