/**
 * The layers of src/, bottom-up (docs/ARCHITECTURE.md). Each imports only what `below` lists
 * for it: util and protocol nothing (protocol is pure), session util and protocol, chat those
 * three, the two hosts (room, gateway) chat and below but never each other, api only chat and
 * util. src/index.ts, the edge app, sits on top.
 * `npm test` runs this (npm run layers); a wrong import fails it with the rule's name.
 */
const below = {
  util: [],
  protocol: [],
  session: ["util", "protocol"],
  chat: ["util", "protocol", "session"],
  room: ["util", "protocol", "session", "chat"],
  gateway: ["util", "protocol", "session", "chat"],
  api: ["util", "chat"],
};

const layerRules = Object.entries(below).map(([layer, allowed]) => ({
  name: `${layer}-imports-only-below`,
  comment: `src/${layer}/ may import ${allowed.length ? allowed.map((l) => `src/${l}/`).join(", ") : "nothing else in src/"} (and itself); nothing above it or beside it.`,
  severity: "error",
  from: { path: `^src/${layer}/` },
  to: { path: "^src/", pathNot: [`^src/${layer}/`, ...allowed.map((l) => `^src/${l}/`)] },
}));

module.exports = {
  forbidden: [
    ...layerRules,
    {
      name: "protocol-is-pure",
      comment: "src/protocol/ is the wire format as pure functions: no runtime modules, no packages.",
      severity: "error",
      from: { path: "^src/protocol/" },
      to: { dependencyTypesNot: ["local"] },
    },
    {
      name: "no-cycles",
      comment: "Modules in src/ do not import each other in a circle.",
      severity: "error",
      from: { path: "^src/" },
      to: { circular: true },
    },
    {
      name: "nothing-imports-the-edge-app",
      comment: "src/index.ts (and src/client.ts, for clients) sit on top: no module in src/ imports them.",
      severity: "error",
      from: { path: "^src/" },
      to: { path: "^src/(index|client)\\.ts$" },
    },
  ],
  options: {
    doNotFollow: { path: "node_modules" },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: "tsconfig.json" },
    exclude: { path: "worker-configuration\\.d\\.ts$" },
  },
};
