/**
 * The layering rule of src/ (.dependency-cruiser.cjs, run by `npm run layers` in `npm test`):
 * the tree passes it, and a wrong-direction import fails it with a message naming the rule.
 */
import { execFile } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, describe, expect, it } from "vitest";

const run = promisify(execFile);
const root = join(import.meta.dirname, "..", "..");
const depcruise = join(root, "node_modules", ".bin", "depcruise");
const config = join(root, ".dependency-cruiser.cjs");

async function cruise(cwd: string): Promise<{ code: number; output: string }> {
  try {
    const { stdout } = await run(depcruise, ["src", "--config", config], { cwd });
    return { code: 0, output: stdout };
  } catch (error) {
    const failed = error as { code: number; stdout: string; stderr: string };
    return { code: failed.code, output: failed.stdout + failed.stderr };
  }
}

const scratch: string[] = [];
afterAll(() => {
  for (const dir of scratch) rmSync(dir, { recursive: true, force: true });
});

/** A throwaway tree: `files` maps paths under it to their source. */
function tree(files: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), "layers-"));
  scratch.push(dir);
  writeFileSync(join(dir, "tsconfig.json"), JSON.stringify({ compilerOptions: { module: "ESNext", moduleResolution: "Bundler" } }));
  for (const [path, text] of Object.entries(files)) {
    mkdirSync(join(dir, path, ".."), { recursive: true });
    writeFileSync(join(dir, path), text);
  }
  return dir;
}

describe("the layers of src/", () => {
  it("hold in this tree", async () => {
    const { code, output } = await cruise(root);
    expect(output).toContain("no dependency violations found");
    expect(code).toBe(0);
  }, 30_000);

  it("fail an import that runs upward, naming the rule", async () => {
    const dir = tree({
      "src/chat/events.ts": "export const event = 'pr-room-message';\n",
      "src/session/engine.ts": "import { event } from '../chat/events.js';\nexport const name = event;\n",
    });
    const { code, output } = await cruise(dir);
    expect(code).not.toBe(0);
    expect(output).toContain("session-imports-only-below: src/session/engine.ts → src/chat/events.ts");
  }, 30_000);

  it("fail the two hosts importing each other", async () => {
    const dir = tree({
      "src/room/pr-room.ts": "export class PrRoom {}\n",
      "src/gateway/chat.ts": "import { PrRoom } from '../room/pr-room.js';\nexport const room = PrRoom;\n",
    });
    const { code, output } = await cruise(dir);
    expect(code).not.toBe(0);
    expect(output).toContain("gateway-imports-only-below: src/gateway/chat.ts → src/room/pr-room.ts");
  }, 30_000);
});
