// Optimizers and gradient clipping against torch.optim / clip_grad_norm_ on identical parameters
// and gradients (scripts/python/optim_reference.py): the CPU single-tensor path runs the same
// ATen calls as PyTorch, so trajectories agree to float32 rounding (in practice bit for bit).
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { cuda, liveTensors, tensor, tidy, type DType, type Tensor } from '../../lib/torch/index.ts';
import { clipGradNorm, createOptimizer, type OptimizerSpec, type ParamGroup } from '../../lib/train/optimizer.ts';
import { assertClose } from '../helpers/close.ts';
import { runPythonJson } from '../helpers/python.ts';

interface OptimCase {
  name: string;
  kind: 'adamw' | 'sgd';
  implementation: 'single' | 'fused';
  options: { lr: number; betas?: [number, number]; eps?: number; weight_decay?: number; amsgrad?: boolean; momentum?: number; dampening?: number; nesterov?: boolean };
  groups: { params: number[]; lr?: number; weight_decay?: number }[];
  shapes: number[][];
  init: number[][];
  steps: { lrs: number[]; grads: (number[] | null)[]; params: number[][] }[];
  state: Record<string, number | number[]>;
}
interface ClipCase {
  name: string;
  max_norm: number;
  norm_type: number | 'inf';
  dtypes: DType[];
  shapes: number[][];
  grads: (number[] | null)[];
  total_norm: number;
  total_norm_dtype: DType;
  clipped: (number[] | null)[];
}

let ref: { cases: OptimCase[]; clip: ClipCase[] };
before(() => {
  ref = runPythonJson('optim_reference.py');
});

// Exact agreement is expected on the CPU; the bound documents what the tests promise.
const TOL = { atol: 1e-7, rtol: 1e-6 };

function spec(c: OptimCase): OptimizerSpec {
  const o = c.options;
  const common = { lr: o.lr, ...(o.weight_decay !== undefined ? { weightDecay: o.weight_decay } : {}) };
  if (c.kind === 'adamw') {
    return { kind: 'adamw', ...common, ...(o.betas ? { betas: o.betas } : {}), ...(o.eps !== undefined ? { eps: o.eps } : {}), amsgrad: o.amsgrad ?? false };
  }
  return { kind: 'sgd', ...common, momentum: o.momentum ?? 0, dampening: o.dampening ?? 0, nesterov: o.nesterov ?? false };
}

function groupsOf(c: OptimCase, params: Tensor[]): ParamGroup[] {
  return c.groups.map((g, gi) => ({
    name: `g${gi}`,
    params: g.params.map((i) => ({ name: `p${i}`, tensor: params[i]! })),
    ...(g.lr !== undefined ? { lr: g.lr } : {}),
    ...(g.weight_decay !== undefined ? { weightDecay: g.weight_decay } : {}),
  }));
}

function setGrads(params: Tensor[], c: OptimCase, step: number): void {
  c.steps[step]!.grads.forEach((g, i) => {
    params[i]!.grad = g === null ? null : tensor(Float32Array.from(g), { shape: c.shapes[i]! });
  });
}

describe('optimizers match torch.optim', () => {
  it('every reference case, step by step', () => {
    for (const c of ref.cases) {
      tidy(() => {
        const params = c.init.map((v, i) => tensor(Float32Array.from(v), { shape: c.shapes[i]!, requiresGrad: true }));
        using opt = createOptimizer(spec(c), groupsOf(c, params), { implementation: c.implementation });
        c.steps.forEach((s, k) => {
          setGrads(params, c, k);
          opt.step(s.lrs);
          params.forEach((p, i) => assertClose(p.toTypedArray(), s.params[i]!, { ...TOL, message: `${c.name}: step ${k + 1}, p${i}` }));
        });
        const state = opt.state();
        for (const [key, expected] of Object.entries(c.state)) {
          const got = state[key];
          assert.ok(got, `${c.name}: state ${key} missing (have ${Object.keys(state).join(', ')})`);
          assertClose(got.toTypedArray(), expected, { ...TOL, message: `${c.name}: state ${key}` });
        }
        for (const key of Object.keys(state)) {
          // SGD also counts steps per parameter (for reports); PyTorch's SGD keeps no step.
          assert.ok(key in c.state || (c.kind === 'sgd' && key.endsWith('.step')), `${c.name}: unexpected state ${key}`);
        }
      });
    }
  });

  it('the fused kernels (forced on the CPU) follow the single-tensor trajectories, missing gradients included', () => {
    for (const c of ref.cases.filter((x) => x.implementation === 'single')) {
      tidy(() => {
        const params = c.init.map((v, i) => tensor(Float32Array.from(v), { shape: c.shapes[i]!, requiresGrad: true }));
        using opt = createOptimizer(spec(c), groupsOf(c, params), { implementation: 'fused' });
        c.steps.forEach((s, k) => {
          setGrads(params, c, k);
          opt.step(s.lrs);
        });
        params.forEach((p, i) => assertClose(p.toTypedArray(), c.steps.at(-1)!.params[i]!, { atol: 1e-6, rtol: 1e-5, message: `${c.name} fused: p${i}` }));
      });
    }
  });

  it('the defaults are torch.optim.AdamW\'s (betas 0.9/0.999, eps 1e-8, weight decay 0.01)', () => tidy(() => {
    const p = tensor([1, 2, 3], { requiresGrad: true });
    using opt = createOptimizer({ kind: 'adamw' }, [{ name: 'w', tensor: p }]);
    const [g] = opt.groups;
    assert.deepEqual({ lr: g!.lr, beta1: g!.beta1, beta2: g!.beta2, eps: g!.eps, weightDecay: g!.weightDecay, amsgrad: g!.amsgrad },
      { lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.01, amsgrad: false });
    using sgd = createOptimizer({ kind: 'sgd', lr: 0.1 }, [{ name: 'w', tensor: p }]);
    assert.deepEqual(sgd.groups[0], { name: 'group_0', names: ['w'], lr: 0.1, weightDecay: 0, momentum: 0, dampening: 0, nesterov: false });
  }));

  it('state saved after 2 steps and loaded into a fresh optimizer continues the same trajectory', () => {
    for (const c of ref.cases.filter((x) => x.implementation === 'single' || x.kind === 'adamw')) {
      tidy(() => {
        const params = c.init.map((v, i) => tensor(Float32Array.from(v), { shape: c.shapes[i]!, requiresGrad: true }));
        const first = createOptimizer(spec(c), groupsOf(c, params), { implementation: c.implementation });
        for (const k of [0, 1]) {
          setGrads(params, c, k);
          first.step(c.steps[k]!.lrs);
        }
        const saved = first.state();
        first.dispose();
        using second = createOptimizer(spec(c), groupsOf(c, params), { implementation: c.implementation });
        second.loadState(saved);
        for (let k = 2; k < c.steps.length; k++) {
          setGrads(params, c, k);
          second.step(c.steps[k]!.lrs);
        }
        params.forEach((p, i) => assertClose(p.toTypedArray(), c.steps.at(-1)!.params[i]!, { ...TOL, message: `${c.name} resumed: p${i}` }));
      });
    }
  });

  it('bad state is refused before anything changes, naming the source and the tensor', () => tidy(() => {
    const p = tensor([1, 2, 3], { requiresGrad: true });
    using opt = createOptimizer({ kind: 'adamw', lr: 0.1 }, [{ name: 'w', tensor: p }]);
    const okState = { 'w.step': tensor(1), 'w.exp_avg': tensor([0.1, 0.2, 0.3]), 'w.exp_avg_sq': tensor([1, 1, 1]) };
    assert.throws(() => opt.loadState({ ...okState, 'w.exp_avg': tensor([1, 2]) }, 'ckpt/optimizer.safetensors'),
      /ckpt\/optimizer\.safetensors: 'w\.exp_avg' has shape \[2\] but the parameter has \[3\]/);
    assert.throws(() => opt.loadState({ ...okState, 'v.step': tensor(1) }, 'f'), /state for 'v', which is not a trainable parameter/);
    assert.throws(() => opt.loadState({ 'w.step': tensor(1), 'w.exp_avg': tensor([1, 2, 3]) }, 'f'), /incomplete AdamW state for 'w'/);
    assert.throws(() => opt.loadState({ 'w.momentum_buffer': tensor([1, 2, 3]) }, 'f'), /'w\.momentum_buffer' is not state of a adamw optimizer/);
    assert.deepEqual(Object.keys(opt.state()), [], 'nothing was loaded');
    opt.loadState(okState);
    assert.deepEqual(Object.keys(opt.state()).sort(), ['w.exp_avg', 'w.exp_avg_sq', 'w.step']);
  }));

  it('invalid hyper-parameters and parameters are TypeErrors naming the group', () => tidy(() => {
    const p = tensor([1, 2, 3], { requiresGrad: true });
    assert.throws(() => createOptimizer({ kind: 'adamw', lr: -1 }, [{ name: 'w', tensor: p }]), /group 'group_0': invalid learning rate -1/);
    assert.throws(() => createOptimizer({ kind: 'adamw', betas: [1, 0.999] }, [{ name: 'w', tensor: p }]), /invalid beta1 1/);
    assert.throws(() => createOptimizer({ kind: 'sgd', nesterov: true }, [{ name: 'w', tensor: p }]), /Nesterov momentum requires a momentum/);
    assert.throws(() => createOptimizer({ kind: 'sgd' }, [{ name: 'w', tensor: p }, { name: 'w', tensor: p }]), /parameter name 'w' appears twice/);
    assert.throws(() => createOptimizer({ kind: 'sgd' }, [{ name: 'x', tensor: p.mul(2) }]), /can't optimize a non-leaf Tensor \('x'\)/);
    assert.throws(() => createOptimizer({ kind: 'sgd' }, [{ name: 'i', tensor: tensor([1, 2]).to('int64') }]), /'i' is not floating point/);
  }));

  it('zeroGrad drops gradients; disposing frees the state and no tensor leaks', () => {
    const before = liveTensors();
    tidy(() => {
      const p = tensor([1, 2, 3], { requiresGrad: true });
      p.grad = tensor([1, 1, 1]);
      using opt = createOptimizer({ kind: 'sgd', lr: 0.5, momentum: 0.9 }, [{ name: 'w', tensor: p }]);
      opt.step();
      assertClose(p.toTypedArray(), [0.5, 1.5, 2.5]);
      opt.zeroGrad(false);
      assertClose(p.grad!.toTypedArray(), [0, 0, 0]);
      opt.zeroGrad();
      assert.equal(p.grad, null);
    });
    assert.equal(liveTensors(), before);
  });
});

describe('gradient clipping matches torch.nn.utils.clip_grad_norm_', () => {
  it('total norm and clipped gradients, over parameters with and without gradients', () => {
    for (const c of ref.clip) {
      tidy(() => {
        const params = c.shapes.map((s, i) => tensor(new Float32Array(s.reduce((a, b) => a * b, 1)), { shape: s, dtype: c.dtypes[i]!, requiresGrad: true }));
        c.grads.forEach((g, i) => {
          params[i]!.grad = g === null ? null : tensor(Float64Array.from(g), { shape: c.shapes[i]! }).to(c.dtypes[i]!);
        });
        const norm = clipGradNorm(params, c.max_norm, c.norm_type === 'inf' ? Infinity : c.norm_type);
        assert.equal(norm.dtype, c.total_norm_dtype, `${c.name}: norm dtype`);
        assertClose(norm.item(), c.total_norm, { ...TOL, message: `${c.name}: total norm` });
        c.clipped.forEach((g, i) => {
          if (g === null) assert.equal(params[i]!.grad, null);
          else assertClose(params[i]!.grad!.toTypedArray(), g, { ...TOL, message: `${c.name}: grad ${i}` });
        });
      });
    }
  });
});

describe('optimizers on CUDA', () => {
  // No CUDA reference from Python in CI: the device run (fused kernels, chosen automatically when
  // every parameter is a CUDA tensor) is compared with torch.optim's CPU trajectory.
  it('auto picks the fused kernels for CUDA parameters and follows torch.optim', { skip: !cuda.isAvailable() && 'no CUDA device' }, () => {
    for (const c of ref.cases.filter((x) => x.implementation === 'single')) {
      tidy(() => {
        const params = c.init.map((v, i) => tensor(Float32Array.from(v), { shape: c.shapes[i]! }).to('cuda').requiresGrad_(true));
        using opt = createOptimizer(spec(c), groupsOf(c, params));
        c.steps.forEach((s, k) => {
          s.grads.forEach((g, i) => {
            params[i]!.grad = g === null ? null : tensor(Float32Array.from(g), { shape: c.shapes[i]! }).to('cuda');
          });
          opt.step(s.lrs);
        });
        params.forEach((p, i) => assertClose(p.to('cpu').toTypedArray(), c.steps.at(-1)!.params[i]!, { atol: 1e-6, rtol: 1e-5, message: `${c.name} on CUDA: p${i}` }));
      });
    }
  });
});
