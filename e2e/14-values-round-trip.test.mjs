// 14. Values come back exactly as stored, through the SDK and the real engine: an object with -0.0, an
// integral float (2.0), ints, a big int, NaN and a value nested at LIMITS.maxValueDepth is created, the page
// reloads, the object is read (-0 is -0, 2.0 a FloatValue, ints numbers) and written back unchanged (update
// with the fields read, and a copy): the vault's wire form is the same as before, kind and sign included
// ({"float":"-0"}, {"float":2}). The value at the depth limit is found by an equality filter. Values the SDK
// cannot store (a lone surrogate, a Date, one level too deep) fail at once with an EchoError naming the field.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { launchRegime } from "./lib/regimes.mjs";
import { getSites } from "./lib/sites.mjs";
import { allowInPopup, openProbe, waitState, watchErrors } from "./lib/util.mjs";

const sites = await getSites();
let browser;
before(async () => {
  browser = await launchRegime("storage-access");
});
after(async () => browser?.close());

/** The raw wire fields of `ids` in `space`, as JSON text (what the vault sent, parsed and re-stringified; the vault sends keys sorted). */
function rawFields(page, space, ids) {
  return page.evaluate(
    async ({ space, ids }) => {
      const r = await window.probe.vault.request({ "object.get": { space, ids } });
      return r.objects.objects.map((o) => JSON.stringify(o.fields));
    },
    { space, ids },
  );
}

test("values read through the SDK and written back unchanged are what was stored", async () => {
  const { context } = browser;
  let page = await openProbe(context, sites.probeA, { state: ["not_authorized", "connected"] });
  if ((await page.evaluate(() => window.probe.vault.state)) !== "connected") {
    await allowInPopup(context, page);
    await waitState(page, "connected");
  }
  const errors = watchErrors(page);
  const made = await page.evaluate(async () => {
    const { vault, echo } = window.probe;
    const nest = (levels, leaf) => {
      let v = leaf;
      for (let i = 0; i < levels; i++) v = i % 2 ? [v] : { k: v };
      return v;
    };
    const space = (await vault.spaces.create({ name: "Values", zero: -0, two: echo.float(2) })).id;
    const id = await vault.space(space).create("v", {
      z: -0,
      f: echo.float(2),
      i: 2,
      h: 2.5,
      n: NaN,
      big: 2n ** 62n,
      l: [echo.float(0), 0, -0, { m: echo.float(-7) }],
      deep: nest(echo.LIMITS.maxValueDepth, -0),
    });
    return { space, id };
  });
  const [stored] = await rawFields(page, made.space, [made.id]);
  const wire = JSON.parse(stored);
  assert.deepEqual(wire.z, { float: "-0" }, stored);
  assert.deepEqual(wire.f, { float: 2 }, stored);
  assert.deepEqual(wire.i, { int: 2 }, stored);
  assert.deepEqual(wire.big, { int: String(2n ** 62n) }, stored);
  assert.deepEqual(wire.l, { list: [{ float: 0 }, { int: 0 }, { float: "-0" }, { map: { m: { float: -7 } } }] }, stored);

  // A fresh page (the SDK starts again), then read and write back unchanged.
  await page.reload();
  await page.waitForFunction(() => window.probe !== undefined);
  await page.evaluate(() => window.probe.start({}));
  await waitState(page, "connected");
  const read = await page.evaluate(async ({ space, id }) => {
    const { vault, echo } = window.probe;
    const s = vault.space(space);
    const [o] = await s.getMany([id]);
    const props = await s.properties();
    const f = o.fields;
    const kinds = {
      zIsNegativeZero: Object.is(f.z, -0),
      fIsFloatValue: f.f instanceof echo.FloatValue && f.f.value === 2,
      iIsNumber: typeof f.i === "number" && f.i === 2,
      hIsNumber: f.h === 2.5,
      nIsNaN: Number.isNaN(f.n),
      bigIsBigint: f.big === 2n ** 62n,
      listKinds: f.l.map((x) => (x instanceof echo.FloatValue ? "FloatValue" : Object.is(x, -0) ? "-0" : typeof x)).join(","),
      propZero: Object.is(props.zero, -0),
      propTwo: props.two instanceof echo.FloatValue,
    };
    // Written back unchanged: the same object, and a copy of it.
    await s.update(id, f);
    const copy = await s.create("v", { ...f });
    await s.setProperty("zero", props.zero);
    await s.setProperty("two", props.two);
    // An equality filter on each value as read, the one at the depth limit included.
    const found = {};
    for (const name of ["z", "f", "deep"]) found[name] = (await s.query(echo.query(echo.where.eq(name, f[name])))).ids.length;
    return { kinds, copy, found, props: JSON.stringify((await s.propertiesWire()), ["zero", "two", "float"]) };
  }, made);
  assert.deepEqual(read.kinds, {
    zIsNegativeZero: true,
    fIsFloatValue: true,
    iIsNumber: true,
    hIsNumber: true,
    nIsNaN: true,
    bigIsBigint: true,
    listKinds: "FloatValue,number,-0,object",
    propZero: true,
    propTwo: true,
  });
  const [after, copy] = await rawFields(page, made.space, [made.id, read.copy]);
  assert.equal(after, stored, "written back unchanged: the same wire value");
  assert.equal(copy, stored, "a copy of the fields read: the same wire value");
  assert.deepEqual(read.found, { z: 2, f: 2, deep: 2 }, "equality filters find the object and its copy");
  assert.equal(read.props, '{"zero":{"float":"-0"},"two":{"float":2}}');

  // Values the SDK cannot store: an EchoError at once, naming the field; nothing reaches the vault.
  const refused = await page.evaluate(async ({ space }) => {
    const { vault, echo } = window.probe;
    const s = vault.space(space);
    const nest = (levels, leaf) => {
      let v = leaf;
      for (let i = 0; i < levels; i++) v = i % 2 ? [v] : { k: v };
      return v;
    };
    const tries = {
      surrogate: () => s.create("v", { tags: ["ok", "\uD800"] }),
      surrogateType: () => s.create("v\uDC00", {}),
      date: () => s.update("00000000000000000000000000", { when: new Date() }),
      map: () => vault.spaces.create({ m: new Map() }),
      deep: () => s.create("v", { d: nest(echo.LIMITS.maxValueDepth + 1, 1) }),
      bigint: () => s.setProperty("n", 2n ** 63n),
      filter: () => s.query(echo.query(echo.where.eq("d", Symbol("x")))),
    };
    const out = {};
    for (const [name, call] of Object.entries(tries)) {
      try {
        await call();
        out[name] = "stored";
      } catch (e) {
        out[name] = { echo: e instanceof echo.EchoError, code: e.code, path: e.details?.path, reason: e.details?.reason };
      }
    }
    out.ping = (await window.probe.settle(vault.ping())).ok;
    return out;
  }, made);
  assert.deepEqual(refused, {
    surrogate: { echo: true, code: "rpc.bad_request", path: "fields.tags[1]", reason: "lone_surrogate" },
    surrogateType: { echo: true, code: "rpc.bad_request", path: "object.create.type", reason: "lone_surrogate" },
    date: { echo: true, code: "rpc.bad_request", path: "fields.when", reason: "unsupported_type" },
    map: { echo: true, code: "rpc.bad_request", path: "properties.m", reason: "unsupported_type" },
    deep: { echo: true, code: "rpc.too_deep", path: refused.deep.path, reason: undefined },
    bigint: { echo: true, code: "rpc.bad_request", path: "properties.n", reason: "out_of_range" },
    filter: { echo: true, code: "rpc.bad_request", path: 'where.eq("d")', reason: "unsupported_type" },
    ping: true,
  });
  assert.match(refused.deep.path, /^fields\.d\.k\[0\]/);
  assert.deepEqual(errors, []);
});
