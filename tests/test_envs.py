"""The environment wrapper: DMC tasks, gymnasium ids, toy bandits, seeding, truncation."""
import numpy as np
import pytest

from qsm.harness.envs import DEFAULT_TASKS, TaskError, ToyBandit, make_env, validate_task
from qsm.harness.probes import probe_states
from qsm.harness.seeding import derive_seed


@pytest.mark.parametrize("task", DEFAULT_TASKS)
def test_default_tasks_load_and_step(task):
    env = make_env(task, seed=1)
    obs = env.reset()
    assert obs.dtype == np.float32 and obs.shape == (env.obs_dim,)
    for _ in range(3):
        obs, r, term, trunc = env.step(np.ones(env.act_dim))
        assert obs.shape == (env.obs_dim,) and np.isfinite(obs).all()
        assert 0.0 <= r <= 1.0 and not term and not trunc
    assert env.max_return == 1000.0


def test_time_limit_is_truncation_not_termination():
    env = make_env("cheetah_run", seed=0)
    env.reset()
    for i in range(1000):
        _, _, term, trunc = env.step(np.zeros(env.act_dim))
        if term or trunc:
            break
    assert i == 999 and trunc and not term


def test_actions_rescaled_to_task_bounds():
    env = make_env("cheetah_run", seed=0)
    env.reset()
    env.step(np.full(env.act_dim, 5.0))  # out of range: clipped to +1 -> the task's maximum
    physics = env._env.physics
    np.testing.assert_allclose(physics.data.ctrl, env._high)
    env.step(np.full(env.act_dim, -1.0))
    np.testing.assert_allclose(physics.data.ctrl, env._low)


def test_seeding_gives_each_seed_its_own_randomness():
    def first_obs(seed):
        return make_env("walker_run", seed).reset()
    np.testing.assert_array_equal(first_obs(5), first_obs(5))
    assert not np.array_equal(first_obs(derive_seed(0, "train_env")), first_obs(derive_seed(1, "train_env")))
    assert not np.array_equal(first_obs(derive_seed(0, "train_env")), first_obs(derive_seed(0, "eval_env")))


def test_reseed_restarts_the_stream():
    env = make_env("reacher_hard", 3)
    a = env.reset()
    env.reseed(3)
    np.testing.assert_array_equal(env.reset(), a)


def test_env_state_roundtrip_continues_identically():
    env = make_env("hopper_hop", 2)
    env.reset()
    for _ in range(10):
        env.step(np.full(env.act_dim, 0.3))
    blob = env.get_state()
    ref = [env.step(np.full(env.act_dim, -0.2))[0] for _ in range(5)]
    env.set_state(blob)
    again = [env.step(np.full(env.act_dim, -0.2))[0] for _ in range(5)]
    np.testing.assert_array_equal(np.stack(ref), np.stack(again))


def test_gymnasium_id_through_the_same_interface():
    env = make_env("HalfCheetah-v5", seed=0)
    obs = env.reset()
    assert obs.dtype == np.float32 and obs.shape == (17,) and env.act_dim == 6
    obs, r, term, trunc = env.step(np.zeros(6))
    assert obs.shape == (17,) and isinstance(r, float)


def test_unknown_task_is_one_line_listing_valid_names():
    with pytest.raises(TaskError) as e:
        make_env("cheetah_runn", 0)
    msg = str(e.value)
    assert "\n" not in msg and "cheetah_run" in msg and "toy_bimodal" in msg and "Did you mean" in msg
    with pytest.raises(TaskError):
        validate_task("nope")


def test_toy_bandit_optima_are_equally_good():
    env = make_env("toy_quadmodal", 0)
    for opt in env.optima:
        assert env.reward(opt) == pytest.approx(1.0)
    assert env.reward(np.zeros(2)) < 0.1  # the centre is a valley between the optima
    assert make_env("toy_bimodal", 0).reward(np.zeros(1)) < 0.3
    assert isinstance(make_env("toy_bimodal", 0), ToyBandit)


@pytest.mark.parametrize("suffix,offset", [("_near_bounds", 0.8), ("_at_bounds", 1.0)])
def test_toy_variants_move_the_same_optima_towards_the_bounds(suffix, offset):
    for base in ("toy_bimodal", "toy_quadmodal"):
        env = make_env(base + suffix, 0)
        np.testing.assert_array_equal(env.optima, ToyBandit.VARIANTS[base] / 0.5 * offset)
        assert [env.reward(o) for o in env.optima] == pytest.approx([1.0] * len(env.optima))
    # at the bounds, a clipped action beyond an optimum earns its reward too
    assert make_env("toy_bimodal_at_bounds", 0).reward(np.array([1.7])) == pytest.approx(1.0)
    np.testing.assert_array_equal(ToyBandit.VARIANTS["toy_bimodal"], [[-0.5], [0.5]])


def test_toy_bandit_episodes_end_by_time_limit_and_contexts_ignore_the_action():
    """Time-limit ends are truncations (bootstrapped, like DMC's), and the next context is the
    same whatever the action: Q's action-dependent part is the reward itself."""
    a, b = make_env("toy_quadmodal", 3), make_env("toy_quadmodal", 3)
    np.testing.assert_array_equal(a.reset(), b.reset())
    for t in range(ToyBandit.EPISODE_STEPS):
        oa, ra, term_a, trunc_a = a.step(np.array([0.5, -0.5]))
        ob, rb, term_b, trunc_b = b.step(np.array([-1.0, 1.0]))
        np.testing.assert_array_equal(oa, ob)
        assert ra == pytest.approx(1.0) and rb < 0.1
        assert not term_a and trunc_a == (t == ToyBandit.EPISODE_STEPS - 1)
    assert a.max_return == ToyBandit.EPISODE_STEPS


def test_probe_states_are_fixed_per_task():
    a = probe_states("finger_spin", 4)
    b = probe_states("finger_spin", 4)
    np.testing.assert_array_equal(a, b)
    assert a.shape == (4, make_env("finger_spin", 0).obs_dim)
    assert len({tuple(s) for s in a}) == 4


def test_probe_state_0_is_the_tasks_initial_state():
    """The paper's multimodality picture (its Fig. 4) samples cartpole_swingup's policy at the
    initial state: probe state 0 is the first observation of an episode (pole down, cart still)."""
    from qsm.harness.probes import PROBE_SEED
    from qsm.harness.seeding import derive_seed
    states = probe_states("cartpole_swingup", 3)
    first = make_env("cartpole_swingup", derive_seed(PROBE_SEED, "probe_env")).reset()
    np.testing.assert_array_equal(states[0], first)
    # cartpole's observation: cart position, cos and sin of the pole angle, velocities
    assert abs(states[0][0]) < 0.05 and states[0][1] < -0.99 and np.abs(states[0][3:]).max() < 0.05


def test_static_dmc_task_list_matches_the_pinned_dm_control():
    """qsm.harness.envs names DMC tasks without importing dm_control (the DAG is built on login
    nodes); its copy must be the pinned dm_control's list."""
    from dm_control import suite

    from qsm.harness.envs import DMC_TASKS
    assert tuple(DMC_TASKS) == tuple(suite.ALL_TASKS)
