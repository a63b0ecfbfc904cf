// A first look at medtune's tensor layer: fit a logistic-regression classifier to a synthetic
// two-label "finding" dataset with autograd, and watch the loss fall. Everything runs in
// libtorch; TypeScript only orchestrates.
import { F, manualSeed, noGrad, randn, tidy, zeros, liveTensors } from '../lib/torch/index.ts';

manualSeed(0);
const features = 16;
const labels = 2;
const start = liveTensors();

// Ground truth: labels are thresholded linear functions of the features.
const trueW = randn([features, labels]);
const x = randn([256, features]);
const y = tidy(() => x.matmul(trueW).gt(0).float());

const w = zeros([features, labels], { requiresGrad: true });
const b = zeros([labels], { requiresGrad: true });
const lr = 0.5;

for (let step = 1; step <= 60; step++) {
  const loss = tidy(() => {
    const logits = x.matmul(w).add(b);
    const l = F.binaryCrossEntropyWithLogits(logits, y);
    l.backward();
    noGrad(() => {
      w.sub_(w.grad!.mul(lr));
      b.sub_(b.grad!.mul(lr));
    });
    w.grad = null;
    b.grad = null;
    return l.item();
  });
  if (step === 1 || step % 10 === 0) console.log(`step ${String(step).padStart(2)}  loss ${loss.toFixed(4)}`);
}

const accuracy = tidy(() => x.matmul(w).add(b).gt(0).float().eq(y).float().mean().item());
console.log(`train accuracy ${(accuracy * 100).toFixed(1)}%`);
for (const t of [trueW, x, y, w, b]) t.dispose();
console.log(`native tensors still alive: ${liveTensors() - start}`);
