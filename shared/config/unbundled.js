// What `#dropload-config` is outside a Lambda bundle (package.json `imports`): the handler modules import
// it for their Lambda `handler` export only, which the local runner never calls; the bundle aliases the
// real config module in (infra/constructs/dropload-function.ts). Any use here is a packaging mistake.
export default new Proxy(
  {},
  {
    get() {
      throw new Error(
        '#dropload-config is only bound inside a Lambda bundle (esbuild --alias:#dropload-config=<config module>)',
      );
    },
  },
);
