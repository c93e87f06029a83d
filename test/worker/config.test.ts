import { exports } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { ConfigError, parseConfig } from "../../src/config.js";

describe("configuration", () => {
  it("has a default for every setting", () => {
    expect(parseConfig({})).toEqual({
      PING_INTERVAL_MS: 25000,
      PING_TIMEOUT_MS: 20000,
      MAX_PAYLOAD_BYTES: 65536,
      CONNECT_TIMEOUT_MS: 45000,
      TYPING_TIMEOUT_MS: 5000,
      MAX_MESSAGE_LENGTH: 4000,
      JOIN_GRACE_MS: 1000,
    });
  });

  it("reads strings (from --var) and numbers (from wrangler.toml)", () => {
    const config = parseConfig({ PING_INTERVAL_MS: "1000", MAX_MESSAGE_LENGTH: 200, TYPING_TIMEOUT_MS: " " });
    expect(config.PING_INTERVAL_MS).toBe(1000);
    expect(config.MAX_MESSAGE_LENGTH).toBe(200);
    expect(config.TYPING_TIMEOUT_MS).toBe(5000);
  });

  it.each([
    ["PING_INTERVAL_MS", "soon", "must be a number"],
    ["PING_TIMEOUT_MS", "1.5", "whole number"],
    ["MAX_PAYLOAD_BYTES", "10", "at least 1024"],
    ["MAX_MESSAGE_LENGTH", "0", "at least 1"],
  ])("names the variable when %s=%j is bad", (key, value, problem) => {
    expect(() => parseConfig({ [key]: value })).toThrow(ConfigError);
    expect(() => parseConfig({ [key]: value })).toThrow(new RegExp(`${key}: .*${problem}`));
  });
});

describe("health", () => {
  it("answers 200 JSON", async () => {
    const response = await exports.default.fetch("http://localhost/healthz");
    expect(response.status).toBe(200);
    expect(response.headers.get("content-type")).toContain("application/json");
    expect(await response.json()).toMatchObject({ ok: true });
  });
});
