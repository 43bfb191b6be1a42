import { describe, expect, it } from 'vitest';
import * as E from '../../src/engine/index.js';
import { testDevices } from '../helpers/devices.js';

describe.each(await testDevices())('scopes on %s', (_name, device) => {
  const make = (v = 1) => E.Tensor.full([4], v, { device });
  const live = () => device.stats().liveBuffers;

  it('dispose intermediates and hand the result to the parent scope', async () => {
    const base = live();
    let inner: E.Tensor | null = null;
    const outer = E.scope(() => {
      const result = E.scope(() => {
        const a = make(2);
        inner = E.mul(a, a);
        return E.addScalar(inner, 1);
      });
      expect(inner!.disposed).toBe(true);
      expect(result.disposed).toBe(false);
      return E.mulScalar(result, 2);
    });
    expect(Array.from(await outer.read())).toEqual([10, 10, 10, 10]);
    expect(live()).toBe(base + 1);
    outer.dispose();
    expect(live()).toBe(base);
  });

  it('returns tensors inside arrays, objects and maps', () => {
    const base = live();
    const out = E.scope(() => {
      const a = make();
      const b = make();
      make(); // dropped
      return { list: [a], nested: { map: new Map([['b', b]]) } };
    });
    expect(out.list[0]!.disposed).toBe(false);
    expect(out.nested.map.get('b')!.disposed).toBe(false);
    expect(live()).toBe(base + 2);
    out.list[0]!.dispose();
    out.nested.map.get('b')!.dispose();
    expect(live()).toBe(base);
  });

  it('keep() lets a tensor outlive every open scope', () => {
    const base = live();
    let kept: E.Tensor | null = null;
    E.scope(() =>
      E.scope(() => {
        kept = E.keep(make());
        make();
      }),
    );
    expect(kept!.disposed).toBe(false);
    expect(live()).toBe(base + 1);
    kept!.dispose();
    expect(live()).toBe(base);
  });

  it('disposes everything when the body throws, and stays balanced', () => {
    const base = live();
    const depth = E.scopeDepth();
    let made: E.Tensor | null = null;
    expect(() =>
      E.scope(() => {
        E.scope(() => {
          made = make();
          throw new Error('inner failure');
        });
      }),
    ).toThrow('inner failure');
    expect(made!.disposed).toBe(true);
    expect(E.scopeDepth()).toBe(depth);
    expect(live()).toBe(base);
  });

  it('scopeAsync disposes across awaits and on rejection', async () => {
    const base = live();
    const value = await E.scopeAsync(async () => {
      const a = E.mulScalar(make(3), 2);
      return (await a.read())[0];
    });
    expect(value).toBe(6);
    expect(live()).toBe(base);
    await expect(
      E.scopeAsync(async () => {
        make();
        await Promise.resolve();
        throw new Error('async failure');
      }),
    ).rejects.toThrow('async failure');
    expect(live()).toBe(base);
    expect(() => E.scope(() => Promise.resolve(1))).toThrow(/use scopeAsync/);
  });

  it('frees a forward pass and its tape: live buffers return to the baseline', async () => {
    const w = E.Tensor.fromArray([1, 2, 3, 4], [4], { device, requiresGrad: true });
    const base = live();
    for (let i = 0; i < 3; i++) {
      // A forward pass that is never differentiated leaks nothing (its tape is dropped too).
      E.scope(() => {
        E.sum(E.exp(E.mul(w, make(0.5))));
      });
      expect(live()).toBe(base);
      // A differentiated one leaves exactly the gradient.
      const loss = E.scope(() => E.sum(E.exp(E.mul(w, make(0.5)))));
      E.backward(loss);
      loss.dispose();
      expect(live()).toBe(base + 1);
      w.grad!.dispose();
      w.grad = null;
      expect(live()).toBe(base);
    }
    w.dispose();
  });

  it('disposing a tensor twice is harmless; use after dispose is a clear error', () => {
    const a = make();
    a.dispose();
    a.dispose();
    expect(() => E.addScalar(a, 1)).toThrow(/was used after it was disposed/);
  });

  it('views share storage until the last one is disposed', () => {
    const base = live();
    const a = make();
    const v = a.view([2, 2]);
    a.dispose();
    expect(live()).toBe(base + 1);
    v.dispose();
    expect(live()).toBe(base);
  });

  it('exclusiveScopeAsync runs concurrent bodies one after another, each freeing its own tensors', async () => {
    const live = () => device.stats().liveBuffers;
    const base = live();
    const events: string[] = [];
    const body = (name: string) => async () => {
      events.push(`${name} start`);
      const t = E.Tensor.fromArray([1, 2, 3], [3], { device });
      await new Promise((r) => setTimeout(r, 5));
      const v = (await E.mul(t, t).read())[2]!;
      events.push(`${name} end`);
      return v;
    };
    const [a, b] = await Promise.all([E.exclusiveScopeAsync(body('a')), E.exclusiveScopeAsync(body('b'))]);
    expect([a, b]).toEqual([9, 9]);
    expect(events).toEqual(['a start', 'a end', 'b start', 'b end']);
    await expect(E.exclusiveScopeAsync(async () => Promise.reject(new Error('boom')))).rejects.toThrow('boom');
    expect(await E.exclusiveScopeAsync(async () => 1)).toBe(1); // the queue survives a failure
    expect(live()).toBe(base);
  });
});
