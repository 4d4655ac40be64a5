"""Count the modes of a policy's action distribution from samples.

``samples`` is an ``(n, d)`` array of actions drawn from one policy at one state, all inside the
action box ``[low, high]^d`` (default ``[-1, 1]^d``), typically n = 1000 (200 to 5000 work) and d
from 1 to 21.  ``count_modes(samples)`` returns the number of modes; ``mode_summary(samples)``
also returns where they are, how much probability mass each one carries, and which of them sit on
the boundary of the action box.

Method: topological mode analysis on a kNN graph (in the style of ToMATo)
-------------------------------------------------------------------------
1. **Validation.**  A 1-D array is read as ``(n, 1)``.  Any other non-2-D shape, fewer than
   ``MIN_SAMPLES = 10`` rows, NaN/inf, non-numeric data, or values outside the box by more than
   ``1e-6`` of its width raise ``ValueError``; values within that tolerance are clipped.
2. **Resolution.**  Points closer than ``RESOLUTION = 1e-6`` (action units) count as the same
   point: kNN distances and kernel widths are floored there.  This turns mass piled exactly on a
   bound (clipped actions, float32 ``tanh`` saturating to exactly 1) or any other atom into a
   region of effectively infinite density.  If no coordinate spans more than the resolution, the
   policy is deterministic: one mode, located at the (median) action.
3. **Projection (d > 6 only).**  The density analysis runs on the coordinates of the samples in
   their 6 leading principal directions.  Separated modes put their between-mode variance in the
   leading directions, and a density estimate in 6-D resolves valleys that one in 21-D, with 1000
   samples, smooths away (without this step two Gaussians 6 sigma apart in 21-D were merged in
   90 % of draws; with it they are separated in 96-97 %).  Locations, cores and bound flags below use
   the full coordinates.
4. **Neighbours.**  Exact k nearest neighbours (a KD-tree; after step 3 at most 6 dimensions)
   with ``k = round(sqrt(n))`` clipped to ``[5, n // 20]`` (so a cluster holding the minimum
   weight of 5 % has more than k points): k = 10, 32, 71 for n = 200, 1000, 5000.
5. **Intrinsic dimension.**  ``m`` is the Levina-Bickel maximum-likelihood estimate (MacKay-
   Ghahramani pooling) from the neighbour distances, clipped to ``[1, d]``.  Densities are
   normalised with ``m`` instead of ``d``, so the log-density noise of flat or strongly anisotropic
   data (effective dimension << d) is not multiplied by ``d / m``.
6. **Density.**  Leave-one-out sample-point (variable-bandwidth) Gaussian KDE at every sample:
   ``log f(y) = logsumexp_j [-m log h_j - |y - x_j|^2 / (2 h_j^2)]`` with
   ``h_j = BANDWIDTH * r_k(j)^ALPHA * G^(1 - ALPHA) / sqrt(m)``, ``r_k(j)`` the distance from
   sample j to its k-th neighbour and ``G`` the geometric mean of ``r_k``.  ``BANDWIDTH = 1``,
   ``ALPHA = 0.75``: between a pure kNN width (1) and Abramson's square-root law (0.5 in 1-D), it
   narrows the kernels of isolated tail points so valleys between modes are not filled in, while
   keeping about k samples per kernel so the estimate is not noisy.
7. **Basins.**  Every sample points to its densest kNN neighbour if that one is denser than itself
   (discrete gradient ascent); following the pointers gives each sample's basin (local maximum).
8. **Saddles.**  Two basins are adjacent if a kNN edge joins them; disconnected pieces of the kNN
   graph are joined by their closest pair of points.  The height of an edge ``(i, j)`` is
   ``min(f_i, f_j, f(midpoint))`` with the KDE evaluated at the midpoint of the segment (the
   "density dip on the connecting segment" check; it matters for edges that jump over an empty
   valley).  It is evaluated for the 4 best edges (by endpoint density) of each basin pair and for
   every bridge.  The saddle between two basins is their highest edge.
9. **Persistence merging.**  Edges are processed from the highest saddle down (disjoint sets): when
   an edge joins two clusters, the one with the lower peak is merged into the other if its peak
   rises less than ``PERSISTENCE = 1.75`` nats of log-density above the saddle (a density ratio
   of 5.75).  Calibration at n = 1000: the thresholds that counted >= 97.5 % of draws right in
   every family (unimodal, uniform, narrow and wide tanh, mixtures of 2-4 modes) spanned about
   1.0-2.4 nats in 1-D (the hardest case: a path between two peaks has no detour, so noise dips
   are deepest) and 0.9-5 nats in 6-D; 1.75 sits inside both.
10. **Weight merging.**  A cluster holding less than ``MIN_WEIGHT = 5 %`` of the samples is merged
    (smallest first) into the neighbouring cluster it shares the highest saddle with; the
    absorbing cluster keeps its own peak.  Every sample thus belongs to one reported mode and the
    weights sum to 1.  Weights are basin masses: where the density between two modes is flat (the
    middle of a U-shaped tanh density) the boundary between basins is poorly determined and the
    weights can be off by part of that flat mass.
11. **Reporting.**  A mode's *core* is its peak sample plus those of the peak's k neighbours that
    belong to the same mode; its location is the coordinate-wise median of the core (so an atom on
    a bound is reported exactly on it).  A mode is *at the lower/upper bound in dimension i* if at
    least ``BOUND_CORE_FRACTION = 25 %`` of its core lies within ``BOUND_TOL = 1 %`` of the box
    half-width from that bound.  ``prominence`` is the log-density drop from the peak to the
    saddle joining the mode to a higher one (``inf`` for the highest).  ``saturation`` gives, per
    dimension, the fraction of all samples within ``BOUND_TOL`` of the lower and upper bound.

What counts as a mode (see ``analysis/estimators/synthetic.py`` for the generators and the
measured rates)
------------------------------------------------------------------------------------------
* Gaussian components whose centres are at least ``3 * (sigma_a + sigma_b)`` apart (sigma: the
  component's largest standard deviation; 6 sigma for equal components), with weights >= 10 %,
  are separate modes, for d from 1 to 21: 100 % of 100 draws per setting for 1-4 components and
  d in {1, 2, 6, 21} at n = 1000.  At n = 200 (3 components) 94 % in 1-D, 98-100 % otherwise.
  Resolution limit (two equal components, n = 1000): 5 sigma apart is resolved in 1-D and 2-D,
  6 sigma in 6-D (100 %) and 21-D (96 %); at 4 sigma they are reported as one mode (86 % of 1-D
  draws, all draws otherwise).
* A unimodal Gaussian with any covariance (tested up to an axis ratio of 1000, and with constant
  coordinates) is one mode.
* Mass on the bound is a mode there.  Clipping puts an atom (infinite density) on the bound.  A
  wide tanh-squashed Gaussian ``tanh(N(0, 3^2))`` piles mass against the bounds, so its density is
  U-shaped: 2 modes at -1 and +1 in 1-D, the 4 corners in 2-D, usually the 8 corners in 3-D.  For
  d >= 4 the corners are not resolved with ~1000 samples (few samples have every coordinate
  saturated); the result is then one mode, flagged as at the bound, and ``saturation`` shows the
  pile-up per dimension.  A narrow tanh-Gaussian (sigma < 1/sqrt(2), where ``tanh`` keeps the
  density unimodal) is one interior mode.  An interior peak whose density falls by less than a
  factor 5.75 before the pile-up at a bound starts is merged into the mode at the bound (e.g. a
  N(0, 0.8^2) clipped to [-1, 1], 10.6 % at each bound: 2 modes, both at a bound, with the
  interior mass in one of them).
* The uniform distribution on the box has no distinct modes; it is reported as **one** mode with
  an arbitrary location (the density estimate is flat up to noise, whose peaks stay below the
  persistence threshold).  The same holds for any flat region.
* A deterministic policy (all samples identical up to ``RESOLUTION``) is one mode; a discrete
  policy is one mode per action carrying >= 5 % of the samples.

``count_modes(x, count_bound_modes=False)`` counts only the modes that are not at a bound.
Runtime: see docs/performance.md.
"""
from __future__ import annotations

from typing import Any

import numpy as np
from scipy.cluster.hierarchy import DisjointSet
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from scipy.spatial import cKDTree
from scipy.special import logsumexp

from analysis.estimators.samples import sample_matrix

__all__ = ["count_modes", "mode_summary", "PERSISTENCE", "MIN_WEIGHT", "BANDWIDTH", "ALPHA",
           "RESOLUTION", "BOUND_TOL", "BOUND_CORE_FRACTION", "MIN_SAMPLES", "default_k"]

PERSISTENCE = 1.75    # nats of log-density a peak must rise above its saddle to be its own mode
MIN_WEIGHT = 0.05     # smallest fraction of the samples a mode may hold
BANDWIDTH = 1.0       # kernel width multiplier (times r_k / sqrt(m), see step 5)
ALPHA = 0.75          # exponent of the local kNN distance in the kernel width
RESOLUTION = 1e-6     # action-space distance below which two samples are the same point
BOUND_TOL = 1e-2      # fraction of the box half-width counted as "on the bound"
BOUND_CORE_FRACTION = 0.25  # share of a mode's core on a bound that makes the mode "at the bound"
MIN_SAMPLES = 10      # fewer samples than this raise ValueError
_PCA_DIMS = 6  # for d > 6 the density analysis runs on the leading 6 principal components
_FULL_MATRIX_MAX_N = 3000  # up to this n the n x n distance matrix is computed once and reused
_MAX_MIDPOINT_EDGES = 4  # midpoint densities evaluated for this many best edges per basin pair


def default_k(n: int) -> int:
    """Neighbourhood size used for n samples: round(sqrt(n)) clipped to [5, n // 20]."""
    return int(max(5, min(round(np.sqrt(n)), n // 20)))


# --------------------------------------------------------------------------------------------
# input handling

def _as_samples(samples: Any, low: float, high: float) -> np.ndarray:
    if not high > low:
        raise ValueError(f"need high > low, got low={low}, high={high}")
    x = sample_matrix(samples, "samples")
    n = x.shape[0]
    if n < MIN_SAMPLES:
        raise ValueError(f"need at least {MIN_SAMPLES} samples to find modes; got n={n}")
    tol = 1e-6 * (high - low)
    if x.min() < low - tol or x.max() > high + tol:
        raise ValueError(
            f"samples must lie in the action box [{low}, {high}]^d; found values in "
            f"[{x.min():.6g}, {x.max():.6g}] (clip or squash the actions first)")
    return np.clip(x, low, high)


# --------------------------------------------------------------------------------------------
# geometry helpers (all vectorised, blocked to bound memory)

def _sq_dists(a: np.ndarray, b: np.ndarray, b_sq: np.ndarray) -> np.ndarray:
    d2 = np.einsum("ij,ij->i", a, a)[:, None] + b_sq[None, :] - 2.0 * (a @ b.T)
    np.maximum(d2, 0.0, out=d2)
    return d2


def _knn(x: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Exact k nearest neighbours of every row (self excluded), sorted by distance. A KD-tree is
    exact and fast here: the density analysis runs in at most _PCA_DIMS dimensions."""
    n = x.shape[0]
    idx = cKDTree(x).query(x, k + 1)[1]
    # drop self; with duplicates self may not come first, so remove it explicitly
    is_self = idx == np.arange(n)[:, None]
    has_self = is_self.any(axis=1)
    drop = np.where(has_self, np.argmax(is_self, axis=1), k)
    keep = np.ones_like(idx, dtype=bool)
    keep[np.arange(n), drop] = False
    idx = idx[keep].reshape(n, k)
    # recompute the selected distances directly (no cancellation error), then sort
    diff = x[idx] - x[:, None, :]
    dist = np.sqrt(np.einsum("ijk,ijk->ij", diff, diff))
    order = np.argsort(dist, axis=1, kind="stable")
    return np.take_along_axis(dist, order, 1), np.take_along_axis(idx, order, 1)


def _intrinsic_dim(dist: np.ndarray, d: int) -> float:
    """Levina-Bickel MLE of the intrinsic dimension (MacKay-Ghahramani pooled form)."""
    ok = dist[:, 0] > RESOLUTION
    if ok.sum() < 10 or dist.shape[1] < 3:
        return 1.0
    r = dist[ok]
    t = np.log(r[:, -1:] / r[:, :-1]).mean(axis=1)
    mean_t = float(t.mean())
    if not mean_t > 0:
        return 1.0
    return float(np.clip(1.0 / mean_t, 1.0, d))


def _log_kde(q: np.ndarray, x: np.ndarray, h: np.ndarray, m: float, leave_out: bool,
             d2_full: np.ndarray | None = None, chunk: int = 512) -> np.ndarray:
    """log of the sample-point Gaussian KDE (up to an additive constant) at the rows of q.

    ``d2_full`` optionally holds the squared distances between q and x (q = x when leaving out)."""
    out = np.empty(len(q))
    sq = np.einsum("ij,ij->i", x, x)
    logw = -m * np.log(h)
    inv = 0.5 / h ** 2
    for s in range(0, len(q), chunk):
        d2 = d2_full[s:s + chunk] if d2_full is not None else _sq_dists(q[s:s + chunk], x, sq)
        a = logw[None, :] - d2 * inv[None, :]
        if leave_out:
            r = np.arange(a.shape[0])
            a[r, s + r] = -np.inf
        out[s:s + chunk] = logsumexp(a, axis=1)
    return out


def _component_bridges(x: np.ndarray, comp: np.ndarray, ncomp: int,
                       d2_full: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """Closest pair of points between every two components of the kNN graph."""
    members = [np.flatnonzero(comp == c) for c in range(ncomp)]
    sqs = [np.einsum("ij,ij->i", x[m_], x[m_]) for m_ in members]
    ci, cj = [], []
    for a in range(ncomp):
        xa = x[members[a]]
        for b in range(a + 1, ncomp):
            if d2_full is not None:
                d2 = d2_full[np.ix_(members[a], members[b])]
            else:
                d2 = _sq_dists(xa, x[members[b]], sqs[b])
            p, q = np.unravel_index(int(np.argmin(d2)), d2.shape)
            ci.append(members[a][p])
            cj.append(members[b][q])
    return np.asarray(ci, dtype=np.int64), np.asarray(cj, dtype=np.int64)


class _Clusters:
    """Disjoint sets of basins, each cluster named by its peak (the basin it keeps when merged).
    scipy's DisjointSet picks its own representatives, so each set's peak is kept beside it."""

    def __init__(self, basins) -> None:
        self.sets = DisjointSet(basins)
        self.peak_of = {b: b for b in basins}  # representative -> peak

    def peak(self, basin: int) -> int:
        return self.peak_of[self.sets[basin]]

    def merge_into(self, child_peak: int, peak: int) -> None:
        """Merge the cluster of `child_peak` into the cluster of `peak`, which keeps its peak."""
        self.sets.merge(child_peak, peak)
        self.peak_of[self.sets[peak]] = peak


# --------------------------------------------------------------------------------------------
# main algorithm

def _single_mode(x: np.ndarray, low: float, high: float, params: dict) -> dict:
    loc = np.median(x, axis=0)[None, :]
    at, dims = _bound_flags([x], low, high)
    sat, sat_any = _saturation(x, low, high)
    return dict(n_modes=1, n_interior_modes=int(not at[0]), n_bound_modes=int(at[0]),
                locations=loc, weights=np.ones(1), at_bound=at, bound_dims=dims,
                prominence=np.array([np.inf]), labels=np.zeros(len(x), dtype=np.int64),
                saturation=sat, saturated_fraction=sat_any, params=params)


def _bound_flags(cores: list[np.ndarray], low: float, high: float) -> tuple[np.ndarray, list]:
    """A mode is at the lower/upper bound in dimension i if at least BOUND_CORE_FRACTION of its
    core samples lie within BOUND_TOL (of the half-width) of that bound."""
    tol = BOUND_TOL * 0.5 * (high - low)
    dims = []
    for core in cores:
        lo_frac = (core <= low + tol).mean(axis=0)
        hi_frac = (core >= high - tol).mean(axis=0)
        dims.append(sorted([(int(i), -1) for i in np.flatnonzero(lo_frac >= BOUND_CORE_FRACTION)]
                           + [(int(i), 1) for i in np.flatnonzero(hi_frac >= BOUND_CORE_FRACTION)]))
    return np.array([len(v) > 0 for v in dims], dtype=bool), dims


def _saturation(x: np.ndarray, low: float, high: float) -> tuple[np.ndarray, float]:
    tol = BOUND_TOL * 0.5 * (high - low)
    lo, hi = x <= low + tol, x >= high - tol
    return np.stack([lo.mean(axis=0), hi.mean(axis=0)], axis=1), float((lo | hi).any(axis=1).mean())


def mode_summary(samples: Any, *, k: int | None = None, persistence: float = PERSISTENCE,
                 min_weight: float = MIN_WEIGHT, bandwidth: float = BANDWIDTH,
                 alpha: float = ALPHA, low: float = -1.0, high: float = 1.0) -> dict:
    """Find the modes of the distribution that produced ``samples`` (see the module docstring).

    Returns a dict with

    * ``n_modes`` (int), ``n_interior_modes``, ``n_bound_modes``;
    * ``locations`` ``(K, d)``, ``weights`` ``(K,)`` (fractions of the samples, summing to 1),
      sorted by decreasing weight;
    * ``at_bound`` ``(K,)`` bool and ``bound_dims``: for each mode the list of ``(dim, -1 | +1)``
      pairs where it sits on the lower / upper bound;
    * ``prominence`` ``(K,)``: log-density drop from the peak to the saddle joining a higher mode;
    * ``labels`` ``(n,)``: the mode index of every sample;
    * ``saturation`` ``(d, 2)``: fraction of samples on the lower / upper bound per dimension,
      and ``saturated_fraction``: fraction of samples on a bound in at least one dimension;
    * ``params``: the settings used (``k``, ``persistence``, ``min_weight``, ``bandwidth``,
      ``alpha``, ``intrinsic_dim``, ``analysis_dims``: the dimension the density analysis ran in).

    Raises ``ValueError`` for invalid samples or options.
    """
    x = _as_samples(samples, low, high)
    n, d = x.shape
    if not (0.0 <= min_weight < 1.0):
        raise ValueError(f"min_weight must be in [0, 1); got {min_weight}")
    if not persistence >= 0:
        raise ValueError(f"persistence must be >= 0; got {persistence}")
    k = default_k(n) if k is None else int(k)
    if not 1 <= k < n:
        raise ValueError(f"k must be in [1, n - 1] = [1, {n - 1}]; got {k}")
    params = dict(k=k, persistence=float(persistence), min_weight=float(min_weight),
                  bandwidth=float(bandwidth), alpha=float(alpha), intrinsic_dim=None,
                  analysis_dims=min(d, _PCA_DIMS))
    if float(np.max(x.max(axis=0) - x.min(axis=0))) < RESOLUTION:
        return _single_mode(x, low, high, params)

    density = _Density(_analysis_coordinates(x), k, bandwidth, alpha)
    params["intrinsic_dim"] = density.intrinsic_dim
    log_density = density.at_samples
    # strict total order on density (ties, e.g. inside an atom, broken by index)
    rank = np.empty(n, dtype=np.int64)
    rank[np.argsort(-log_density, kind="stable")] = np.arange(n)
    basin = _basins(rank, density.neighbours)
    saddles = _basin_saddles(density, basin)
    clusters = _merge_by_persistence(basin, rank, log_density, saddles, persistence)
    weight = _merge_light_clusters(clusters, basin, rank, saddles, min_weight * n)

    # final labelling, sorted by weight
    roots = np.array([clusters.peak(b) for b in basin.tolist()])
    mode_roots = sorted(weight, key=lambda r: (-weight[r], rank[r]))
    index = {r: i for i, r in enumerate(mode_roots)}
    labels = np.array([index[r] for r in roots.tolist()], dtype=np.int64)
    weights = np.array([weight[r] / n for r in mode_roots])
    prominence = _prominences(mode_roots, clusters, saddles, rank, log_density)

    # locations: coordinate-wise median of the peak and its same-mode neighbours
    locations = np.empty((len(mode_roots), x.shape[1]))
    cores = []
    for i, r in enumerate(mode_roots):
        near = np.r_[r, density.neighbours[r]]
        cores.append(x[near[labels[near] == i]])
        locations[i] = np.median(cores[-1], axis=0)
    at_bound, bound_dims = _bound_flags(cores, low, high)
    n_bound = int(at_bound.sum())
    saturation, saturated = _saturation(x, low, high)
    return dict(n_modes=len(mode_roots), n_interior_modes=len(mode_roots) - n_bound,
                n_bound_modes=n_bound, locations=locations, weights=weights, at_bound=at_bound,
                bound_dims=bound_dims, prominence=np.array([prominence[r] for r in mode_roots]),
                labels=labels, saturation=saturation, saturated_fraction=saturated, params=params)


def _analysis_coordinates(x: np.ndarray) -> np.ndarray:
    """Centred samples (better conditioned squared distances), in the leading _PCA_DIMS principal
    directions above that dimension."""
    centred = x - x.mean(axis=0)
    if x.shape[1] > _PCA_DIMS:
        _, evecs = np.linalg.eigh(np.cov(centred, rowvar=False))
        centred = centred @ evecs[:, ::-1][:, :_PCA_DIMS]
    return centred


class _Density:
    """The variable-bandwidth kNN kernel density of samples xc (n, d), in log units."""

    def __init__(self, xc: np.ndarray, k: int, bandwidth: float, alpha: float):
        n, d = xc.shape
        self.xc, self.k = xc, k
        sq_norms = np.einsum("ij,ij->i", xc, xc)
        self.d2_full = _sq_dists(xc, xc, sq_norms) if n <= _FULL_MATRIX_MAX_N else None
        dist, self.neighbours = _knn(xc, k)
        self.intrinsic_dim = _intrinsic_dim(dist, d)
        radius = np.maximum(dist[:, -1], RESOLUTION)
        typical = np.exp(np.mean(np.log(radius)))  # geometric mean of the kNN radii
        self.h = np.maximum(bandwidth * typical * (radius / typical) ** alpha
                            / np.sqrt(self.intrinsic_dim), RESOLUTION)
        self.at_samples = _log_kde(xc, xc, self.h, self.intrinsic_dim, leave_out=True,
                                   d2_full=self.d2_full)

    def at(self, points: np.ndarray) -> np.ndarray:
        return _log_kde(points, self.xc, self.h, self.intrinsic_dim, leave_out=False)


def _basins(rank: np.ndarray, neighbours: np.ndarray) -> np.ndarray:
    """Discrete gradient ascent on the kNN graph: the peak sample of every sample's basin."""
    rows = np.arange(len(rank))
    neighbour_rank = rank[neighbours]
    best = np.argmin(neighbour_rank, axis=1)
    parent = np.where(neighbour_rank[rows, best] < rank, neighbours[rows, best], rows)
    while True:
        grandparent = parent[parent]
        if np.array_equal(grandparent, parent):
            return parent
        parent = grandparent


def _basin_saddles(density: _Density, basin: np.ndarray) -> list:
    """(basin a, basin b, saddle log-density) for every pair of adjacent basins, highest saddle
    first. Candidate edges: kNN edges between different basins, plus bridges between the kNN
    graph's connected components; a pair's saddle is its highest edge, an edge's height the
    lowest density among its ends and its midpoint."""
    xc, k, neighbours, log_density = density.xc, density.k, density.neighbours, density.at_samples
    n = len(xc)
    ii = np.repeat(np.arange(n), k)
    jj = neighbours.ravel()
    graph = coo_matrix((np.ones(n * k), (ii, jj)), shape=(n, n))
    ncomp, comp = connected_components(graph, directed=False)
    if ncomp > 1:
        bi, bj = _component_bridges(xc, comp, ncomp, density.d2_full)
        ii = np.concatenate([ii, bi])
        jj = np.concatenate([jj, bj])
    cross = basin[ii] != basin[jj]
    ei, ej = np.minimum(ii[cross], jj[cross]), np.maximum(ii[cross], jj[cross])
    key = np.unique(ei * n + ej)
    ei, ej = key // n, key % n
    height = np.minimum(log_density[ei], log_density[ej])
    ba, bb = np.minimum(basin[ei], basin[ej]), np.maximum(basin[ei], basin[ej])
    if len(ei):
        # the density at edge midpoints is evaluated for the best few edges of every basin pair
        # (ranked by their endpoint densities) and for every bridge; other edges are dropped
        pair = ba * n + bb
        order = np.lexsort((-height, pair))
        sorted_pairs = pair[order]
        start = np.r_[0, np.flatnonzero(sorted_pairs[1:] != sorted_pairs[:-1]) + 1]
        position = np.arange(len(order)) - np.repeat(start, np.diff(np.r_[start, len(order)]))
        keep = np.zeros(len(ei), dtype=bool)
        keep[order[position < _MAX_MIDPOINT_EDGES]] = True
        if ncomp > 1:
            keep |= np.isin(key, np.minimum(bi, bj) * n + np.maximum(bi, bj))
        ei, ej, ba, bb, height = ei[keep], ej[keep], ba[keep], bb[keep], height[keep]
        height = np.minimum(height, density.at(0.5 * (xc[ei] + xc[ej])))
    # saddle of every basin pair = its highest edge
    pair = ba * n + bb
    order = np.lexsort((-height, pair))
    first = np.ones(len(order), dtype=bool)
    first[1:] = pair[order][1:] != pair[order][:-1]
    order = order[first]
    order = order[np.argsort(-height[order], kind="stable")]
    return list(zip(ba[order].tolist(), bb[order].tolist(), height[order].tolist()))


def _merge_by_persistence(basin, rank, log_density, saddles, persistence) -> "_Clusters":
    """ToMATo: a lower peak joins the higher one if it rises less than `persistence` above the
    saddle between them."""
    clusters = _Clusters(np.unique(basin).tolist())
    for u, v, saddle in saddles:
        high, low = clusters.peak(u), clusters.peak(v)
        if high == low:
            continue
        if rank[high] > rank[low]:
            high, low = low, high
        if log_density[low] - saddle < persistence:
            clusters.merge_into(low, high)
    return clusters


def _merge_light_clusters(clusters, basin, rank, saddles, min_count) -> dict:
    """Clusters holding fewer than min_count samples join the neighbour across their highest
    saddle, lightest first; returns {peak: samples} of the clusters left."""
    roots = np.array([clusters.peak(b) for b in basin.tolist()])
    weight = {int(r): int(c) for r, c in zip(*np.unique(roots, return_counts=True))}
    saddle_to: dict[int, dict[int, float]] = {r: {} for r in weight}
    for u, v, saddle in saddles:
        ru, rv = clusters.peak(u), clusters.peak(v)
        if ru != rv and saddle > saddle_to[ru].get(rv, -np.inf):
            saddle_to[ru][rv] = saddle
            saddle_to[rv][ru] = saddle
    while len(weight) > 1:
        small = min(weight, key=lambda r: (weight[r], -rank[r]))
        if weight[small] >= min_count:
            break
        neighbours = saddle_to.pop(small)
        if neighbours:
            target = max(neighbours, key=lambda r: (neighbours[r], weight[r]))
        else:  # cannot happen once components are bridged; keep the mass anyway
            target = max((r for r in weight if r != small), key=lambda r: weight[r])
        clusters.merge_into(small, target)
        weight[target] += weight.pop(small)
        for r, saddle in neighbours.items():
            saddle_to[r].pop(small, None)
            if r != target and saddle > saddle_to[target].get(r, -np.inf):
                saddle_to[target][r] = saddle
                saddle_to[r][target] = saddle
    return weight


def _prominences(mode_roots, clusters, saddles, rank, log_density) -> dict:
    """Prominence of every final mode: merging goes on without a threshold, and a mode's
    prominence is its peak's height above the saddle where it dies (inf for the highest)."""
    prominence = {r: np.inf for r in mode_roots}
    final = _Clusters(mode_roots)
    for u, v, saddle in saddles:
        high, low = final.peak(clusters.peak(u)), final.peak(clusters.peak(v))
        if high == low:
            continue
        if rank[high] > rank[low]:
            high, low = low, high
        prominence[low] = float(log_density[low] - saddle)
        final.merge_into(low, high)
    return prominence


def count_modes(samples: Any, *, count_bound_modes: bool = True, **options: Any) -> int:
    """Number of modes of the action distribution behind ``samples`` (an ``(n, d)`` array in the
    action box).  ``options`` are passed to :func:`mode_summary` (``k``, ``persistence``,
    ``min_weight``, ``bandwidth``, ``alpha``, ``low``, ``high``).  With
    ``count_bound_modes=False`` only modes away from the bounds are counted (may be 0)."""
    summary = mode_summary(samples, **options)
    return int(summary["n_modes"] if count_bound_modes else summary["n_interior_modes"])
