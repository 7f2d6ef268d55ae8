// HDBSCAN (Campello, Moulavi & Sander 2013) written for this project: core distances, Prim's MST on the
// implicit mutual-reachability graph, single-linkage tree, condensed tree, stability, EOM/leaf selection,
// labels with −1 noise and membership probabilities; plus the adjusted Rand index used to compare labelings.
import { AppError } from '../shared/errors.js';

/** Options of {@link hdbscan}. */
export interface HdbscanOptions {
  /** Smallest group the condensed tree keeps as a cluster (≥ 2). R's `minPts` sets this and minSamples. */
  readonly minClusterSize: number;
  /**
   * Neighbours defining the core distance, counting the point itself (sklearn `min_samples`; R dbscan's
   * `minPts`, whose `kNNdist(k = minPts − 1)` excludes the point). Default: minClusterSize.
   */
  readonly minSamples?: number;
  /** Flat cluster selection: excess of mass (default) or the leaves of the condensed tree. */
  readonly method?: 'eom' | 'leaf';
}

/** A flat HDBSCAN clustering. */
export interface HdbscanResult {
  /** Cluster index per point, 0…clusterCount−1, or −1 for noise. */
  readonly labels: Int32Array;
  /** Membership strength in [0, 1] per point (0 for noise), as in the Python `hdbscan` library. */
  readonly probabilities: Float64Array;
  readonly clusterCount: number;
}

type PointsInput = readonly (readonly number[])[] | readonly Float64Array[];

/** Copies the points into one row-major Float64Array after checking shape and finiteness. */
function flattenPoints(points: PointsInput): { data: Float64Array; count: number; dimension: number } {
  const count = points.length;
  const dimension = count === 0 ? 0 : points[0]!.length;
  if (count > 0 && dimension === 0) {
    throw new AppError('VALIDATION_FAILED', 'hdbscan: points must have at least one coordinate');
  }
  const data = new Float64Array(count * dimension);
  for (let row = 0; row < count; row += 1) {
    const point = points[row]!;
    if (point.length !== dimension) {
      throw new AppError(
        'VALIDATION_FAILED',
        `hdbscan: point ${row} has ${point.length} coordinates, expected ${dimension}`,
        { details: { row, expected: dimension, found: point.length } },
      );
    }
    for (let column = 0; column < dimension; column += 1) {
      const value = point[column]!;
      if (!Number.isFinite(value)) {
        throw new AppError('VALIDATION_FAILED', `hdbscan: point ${row} coordinate ${column} is not finite`, {
          details: { row, column },
        });
      }
      data[row * dimension + column] = value;
    }
  }
  return { data, count, dimension };
}

function euclidean(data: Float64Array, dimension: number, a: number, b: number): number {
  let sum = 0;
  const offsetA = a * dimension;
  const offsetB = b * dimension;
  for (let column = 0; column < dimension; column += 1) {
    const delta = data[offsetA + column]! - data[offsetB + column]!;
    sum += delta * delta;
  }
  return Math.sqrt(sum);
}

/** k-th smallest (0-based) of values[0, length) by in-place quickselect (Hoare partition). */
function selectKth(values: Float64Array, length: number, k: number): number {
  let left = 0;
  let right = length - 1;
  while (left < right) {
    const pivot = values[(left + right) >>> 1]!;
    let i = left;
    let j = right;
    while (i <= j) {
      while (values[i]! < pivot) i += 1;
      while (values[j]! > pivot) j -= 1;
      if (i <= j) {
        const swap = values[i]!;
        values[i] = values[j]!;
        values[j] = swap;
        i += 1;
        j -= 1;
      }
    }
    if (k <= j) right = j;
    else if (k >= i) left = i;
    else return values[k]!;
  }
  return values[k]!;
}

/** Core distance of every point: distance to its minSamples-th nearest neighbour counting itself. */
function coreDistances(
  data: Float64Array,
  count: number,
  dimension: number,
  minSamples: number,
): Float64Array {
  const core = new Float64Array(count);
  if (minSamples <= 1) return core;
  const scratch = new Float64Array(count - 1);
  for (let row = 0; row < count; row += 1) {
    let filled = 0;
    for (let other = 0; other < count; other += 1) {
      if (other !== row) scratch[filled++] = euclidean(data, dimension, row, other);
    }
    core[row] = selectKth(scratch, filled, minSamples - 2);
  }
  return core;
}

/**
 * Prim's algorithm on the complete mutual-reachability graph, distances computed on the fly:
 * O(n²) time, O(n) memory. Returns the n−1 edges as parallel arrays.
 */
function mutualReachabilityMst(
  data: Float64Array,
  count: number,
  dimension: number,
  core: Float64Array,
): { from: Int32Array; to: Int32Array; weight: Float64Array } {
  const from = new Int32Array(count - 1);
  const to = new Int32Array(count - 1);
  const weight = new Float64Array(count - 1);
  const inTree = new Uint8Array(count);
  const bestDistance = new Float64Array(count).fill(Infinity);
  const bestSource = new Int32Array(count);
  let current = 0;
  inTree[0] = 1;
  for (let edge = 0; edge < count - 1; edge += 1) {
    const coreCurrent = core[current]!;
    let nextPoint = -1;
    let nextDistance = Infinity;
    for (let other = 0; other < count; other += 1) {
      if (inTree[other] === 1) continue;
      let distance = euclidean(data, dimension, current, other);
      if (coreCurrent > distance) distance = coreCurrent;
      const coreOther = core[other]!;
      if (coreOther > distance) distance = coreOther;
      if (distance < bestDistance[other]!) {
        bestDistance[other] = distance;
        bestSource[other] = current;
      }
      if (bestDistance[other]! < nextDistance) {
        nextDistance = bestDistance[other]!;
        nextPoint = other;
      }
    }
    from[edge] = bestSource[nextPoint]!;
    to[edge] = nextPoint;
    weight[edge] = nextDistance;
    inTree[nextPoint] = 1;
    current = nextPoint;
  }
  return { from, to, weight };
}

/** Single-linkage merges: node n + i joins left[i] and right[i] at distance[i], holding size[i] points. */
interface LinkageTree {
  readonly left: Int32Array;
  readonly right: Int32Array;
  readonly distance: Float64Array;
  readonly size: Int32Array;
}

function singleLinkage(
  count: number,
  mst: { from: Int32Array; to: Int32Array; weight: Float64Array },
): LinkageTree {
  const edges = count - 1;
  const order = Array.from({ length: edges }, (_, index) => index);
  order.sort((a, b) => mst.weight[a]! - mst.weight[b]! || a - b);
  const parent = new Int32Array(2 * count - 1);
  for (let node = 0; node < parent.length; node += 1) parent[node] = node;
  const find = (node: number): number => {
    let root = node;
    while (parent[root] !== root) root = parent[root]!;
    while (parent[node] !== root) {
      const next = parent[node]!;
      parent[node] = root;
      node = next;
    }
    return root;
  };
  const left = new Int32Array(edges);
  const right = new Int32Array(edges);
  const distance = new Float64Array(edges);
  const size = new Int32Array(edges);
  const nodeSize = (node: number): number => (node < count ? 1 : size[node - count]!);
  for (let merge = 0; merge < edges; merge += 1) {
    const edge = order[merge]!;
    const rootA = find(mst.from[edge]!);
    const rootB = find(mst.to[edge]!);
    const node = count + merge;
    left[merge] = rootA;
    right[merge] = rootB;
    distance[merge] = mst.weight[edge]!;
    size[merge] = nodeSize(rootA) + nodeSize(rootB);
    parent[rootA] = node;
    parent[rootB] = node;
  }
  return { left, right, distance, size };
}

/**
 * Condensed tree: entries (parent cluster, child, λ, child size). Clusters are numbered 0 (root) upwards
 * in breadth-first order, so a parent's number is always smaller than its children's.
 */
interface CondensedTree {
  readonly parent: number[];
  /** Child cluster number, or −(point + 1) for a point leaving its cluster. */
  readonly child: number[];
  readonly lambda: number[];
  readonly childSize: number[];
  readonly clusterCount: number;
}

/**
 * Builds the condensed tree the way R dbscan's `computeStability` does (our oracle): a cluster splits
 * only where both sides hold at least minClusterSize points; otherwise both sides stay in the cluster
 * and each point leaves it at λ = 1 / (height of the merge that first joins the point), clipped at the
 * λ where the cluster itself split. (The Python `hdbscan` library instead drops a whole undersized side
 * at the split λ; labels usually agree, but leaf stabilities, and so EOM choices, can differ.)
 */
function condenseTree(count: number, tree: LinkageTree, minClusterSize: number): CondensedTree {
  const parentOut: number[] = [];
  const childOut: number[] = [];
  const lambdaOut: number[] = [];
  const sizeOut: number[] = [];
  const nodeSize = (node: number): number => (node < count ? 1 : tree.size[node - count]!);
  const root = 2 * count - 2;
  const clusterOf = new Int32Array(2 * count - 1).fill(-1);
  clusterOf[root] = 0;
  let nextCluster = 1;
  const splitLambda: number[] = [Infinity];
  const pointEntries: number[] = [];

  const queue: number[] = [root];
  for (let head = 0; head < queue.length; head += 1) {
    const node = queue[head]!;
    const merge = node - count;
    const cluster = clusterOf[node]!;
    const mergeDistance = tree.distance[merge]!;
    const lambda = mergeDistance > 0 ? 1 / mergeDistance : Infinity;
    const leftNode = tree.left[merge]!;
    const rightNode = tree.right[merge]!;
    const leftSize = nodeSize(leftNode);
    const rightSize = nodeSize(rightNode);
    if (leftSize >= minClusterSize && rightSize >= minClusterSize) {
      splitLambda[cluster] = lambda;
      for (const [childNode, childSize] of [
        [leftNode, leftSize],
        [rightNode, rightSize],
      ] as const) {
        const childCluster = nextCluster++;
        splitLambda.push(Infinity);
        clusterOf[childNode] = childCluster;
        parentOut.push(cluster);
        childOut.push(childCluster);
        lambdaOut.push(lambda);
        sizeOut.push(childSize);
        queue.push(childNode);
      }
      continue;
    }
    for (const childNode of [leftNode, rightNode]) {
      if (childNode < count) {
        pointEntries.push(parentOut.length);
        parentOut.push(cluster);
        childOut.push(-(childNode + 1));
        lambdaOut.push(lambda);
        sizeOut.push(1);
      } else {
        clusterOf[childNode] = cluster;
        queue.push(childNode);
      }
    }
  }
  // A point still inside a cluster when that cluster split leaves it at the split.
  for (const entry of pointEntries) {
    const clip = splitLambda[parentOut[entry]!]!;
    if (lambdaOut[entry]! > clip) lambdaOut[entry] = clip;
  }
  return {
    parent: parentOut,
    child: childOut,
    lambda: lambdaOut,
    childSize: sizeOut,
    clusterCount: nextCluster,
  };
}

/** Selects flat clusters: excess of mass over stabilities, or the leaves; the root is never selected. */
function selectClusters(tree: CondensedTree, method: 'eom' | 'leaf'): Uint8Array {
  const clusters = tree.clusterCount;
  const birth = new Float64Array(clusters);
  const stability = new Float64Array(clusters);
  const children: number[][] = Array.from({ length: clusters }, () => []);
  const clusterParent = new Int32Array(clusters).fill(-1);
  for (let entry = 0; entry < tree.parent.length; entry += 1) {
    const child = tree.child[entry]!;
    if (child > 0) {
      birth[child] = tree.lambda[entry]!;
      children[tree.parent[entry]!]!.push(child);
      clusterParent[child] = tree.parent[entry]!;
    }
  }
  for (let entry = 0; entry < tree.parent.length; entry += 1) {
    const parent = tree.parent[entry]!;
    const lambda = tree.lambda[entry]!;
    // λ equal to the birth contributes nothing (this also avoids ∞ − ∞ for duplicate points).
    if (lambda !== birth[parent]) {
      stability[parent] = stability[parent]! + (lambda - birth[parent]!) * tree.childSize[entry]!;
    }
  }
  const selected = new Uint8Array(clusters);
  if (method === 'leaf') {
    for (let cluster = 1; cluster < clusters; cluster += 1) {
      if (children[cluster]!.length === 0) selected[cluster] = 1;
    }
    return selected;
  }
  for (let cluster = clusters - 1; cluster >= 1; cluster -= 1) {
    let subtree = 0;
    for (const child of children[cluster]!) subtree += stability[child]!;
    if (subtree > stability[cluster]!) {
      stability[cluster] = subtree;
    } else {
      selected[cluster] = 1;
    }
  }
  // A selected cluster absorbs its whole subtree: unselect every cluster with a selected ancestor.
  const coveredByAncestor = new Uint8Array(clusters);
  for (let cluster = 1; cluster < clusters; cluster += 1) {
    const parent = clusterParent[cluster]!;
    if (parent > 0 && (coveredByAncestor[parent] === 1 || selected[parent] === 1)) {
      coveredByAncestor[cluster] = 1;
      selected[cluster] = 0;
    }
  }
  return selected;
}

function labelPoints(count: number, tree: CondensedTree, selected: Uint8Array): HdbscanResult {
  const clusters = tree.clusterCount;
  const clusterParent = new Int32Array(clusters).fill(-1);
  for (let entry = 0; entry < tree.parent.length; entry += 1) {
    const child = tree.child[entry]!;
    if (child > 0) clusterParent[child] = tree.parent[entry]!;
  }
  const flatLabel = new Int32Array(clusters).fill(-1);
  const owner = new Int32Array(clusters).fill(-1);
  let clusterCount = 0;
  for (let cluster = 1; cluster < clusters; cluster += 1) {
    if (selected[cluster] === 1) {
      flatLabel[cluster] = clusterCount++;
      owner[cluster] = cluster;
    } else {
      owner[cluster] = owner[clusterParent[cluster]!]!;
    }
  }
  // Largest λ among each cluster's direct children (the Python library's `max_lambdas`).
  const deathLambda = new Float64Array(clusters);
  for (let entry = 0; entry < tree.parent.length; entry += 1) {
    const parent = tree.parent[entry]!;
    if (tree.lambda[entry]! > deathLambda[parent]!) deathLambda[parent] = tree.lambda[entry]!;
  }
  const labels = new Int32Array(count).fill(-1);
  const probabilities = new Float64Array(count);
  for (let entry = 0; entry < tree.parent.length; entry += 1) {
    const child = tree.child[entry]!;
    if (child > 0) continue;
    const point = -child - 1;
    const selectedCluster = owner[tree.parent[entry]!]!;
    if (selectedCluster < 0) continue;
    labels[point] = flatLabel[selectedCluster]!;
    const maxLambda = deathLambda[selectedCluster]!;
    const lambda = tree.lambda[entry]!;
    probabilities[point] =
      maxLambda === 0 || !Number.isFinite(lambda) ? 1 : Math.min(lambda, maxLambda) / maxLambda;
  }
  return { labels, probabilities, clusterCount };
}

/**
 * Clusters points with HDBSCAN (Euclidean distance). Deterministic; O(n²·d) time and O(n) extra memory,
 * so 8,000 points take seconds. Throws AppError `VALIDATION_FAILED` on ragged or non-finite input and
 * on minSamples larger than the number of points.
 */
export function hdbscan(points: PointsInput, options: HdbscanOptions): HdbscanResult {
  const { minClusterSize } = options;
  const minSamples = options.minSamples ?? minClusterSize;
  const method = options.method ?? 'eom';
  if (!Number.isInteger(minClusterSize) || minClusterSize < 2) {
    throw new AppError(
      'VALIDATION_FAILED',
      `hdbscan: minClusterSize must be an integer ≥ 2, got ${minClusterSize}`,
    );
  }
  if (!Number.isInteger(minSamples) || minSamples < 1) {
    throw new AppError('VALIDATION_FAILED', `hdbscan: minSamples must be an integer ≥ 1, got ${minSamples}`);
  }
  if (method !== 'eom' && method !== 'leaf') {
    throw new AppError('VALIDATION_FAILED', `hdbscan: method must be 'eom' or 'leaf', got ${String(method)}`);
  }
  const { data, count, dimension } = flattenPoints(points);
  if (count > 0 && minSamples > count) {
    throw new AppError(
      'VALIDATION_FAILED',
      `hdbscan: minSamples (${minSamples}) exceeds the number of points (${count})`,
      { details: { minSamples, points: count } },
    );
  }
  if (count < 2) {
    return {
      labels: new Int32Array(count).fill(-1),
      probabilities: new Float64Array(count),
      clusterCount: 0,
    };
  }
  const core = coreDistances(data, count, dimension, minSamples);
  const mst = mutualReachabilityMst(data, count, dimension, core);
  const linkage = singleLinkage(count, mst);
  const condensed = condenseTree(count, linkage, minClusterSize);
  const selected = selectClusters(condensed, method);
  return labelPoints(count, condensed, selected);
}

/**
 * Adjusted Rand index (Hubert & Arabie 1985) between two labelings of the same items. Noise (−1) is one
 * more label. Two trivial identical partitions (all one cluster, or all singletons) score 1.
 */
export function adjustedRandIndex(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) {
    throw new AppError(
      'VALIDATION_FAILED',
      `adjustedRandIndex: labelings differ in length (${a.length} vs ${b.length})`,
    );
  }
  const n = a.length;
  const pairs = (k: number): number => (k * (k - 1)) / 2;
  const joint = new Map<string, number>();
  const rows = new Map<number, number>();
  const columns = new Map<number, number>();
  for (let index = 0; index < n; index += 1) {
    const x = a[index]!;
    const y = b[index]!;
    const key = `${x}\u0000${y}`;
    joint.set(key, (joint.get(key) ?? 0) + 1);
    rows.set(x, (rows.get(x) ?? 0) + 1);
    columns.set(y, (columns.get(y) ?? 0) + 1);
  }
  let sumJoint = 0;
  for (const value of joint.values()) sumJoint += pairs(value);
  let sumRows = 0;
  for (const value of rows.values()) sumRows += pairs(value);
  let sumColumns = 0;
  for (const value of columns.values()) sumColumns += pairs(value);
  const totalPairs = pairs(n);
  if (totalPairs === 0) return 1;
  const expected = (sumRows * sumColumns) / totalPairs;
  const maximum = (sumRows + sumColumns) / 2;
  if (maximum === expected) return 1;
  return (sumJoint - expected) / (maximum - expected);
}
