import { exports } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { ConfigError, parseConfig } from "../../src/chat/config.js";

describe("configuration", () => {
  it("has a default for every setting", () => {
    expect(parseConfig({})).toEqual({
      PING_INTERVAL_MS: 25000,
      PING_TIMEOUT_MS: 20000,
      DIRECT_PING_INTERVAL_MS: 45000,
      MAX_PAYLOAD_BYTES: 65536,
      CONNECT_TIMEOUT_MS: 45000,
      TYPING_TIMEOUT_MS: 5000,
      MAX_MESSAGE_LENGTH: 4000,
      JOIN_GRACE_MS: 1000,
      MAX_ROOMS_PER_CONNECTION: 20,
      MAX_MEMBERS_PER_ROOM: 1000,
      MAX_CONNECTIONS_PER_USER: 5,
      RATE_LIMIT_PER_SECOND: 10,
      RATE_LIMIT_BURST: 20,
      RECOVERY_WINDOW_MS: 120000,
      HISTORY_RETENTION_DAYS: 0,
      RECOVERY_MAX_MESSAGES: 1000,
      MAX_REPLAY_BYTES: 4194304,
      MAX_RESUMES_PER_MINUTE: 10,
      PRESENCE_GRACE_MS: 5000,
      MAX_BACKLOG_BYTES: 1048576,
      SLOW_READER_TIMEOUT_MS: 10000,
      CLOCK_SKEW_SECONDS: 60,
      FAULT_INJECTION: "off",
    });
  });

  it("reads strings (from --var) and numbers (from wrangler.toml)", () => {
    const config = parseConfig({ PING_INTERVAL_MS: "1000", MAX_MESSAGE_LENGTH: 200, TYPING_TIMEOUT_MS: " " });
    expect(config.PING_INTERVAL_MS).toBe(1000);
    expect(config.MAX_MESSAGE_LENGTH).toBe(200);
    expect(config.TYPING_TIMEOUT_MS).toBe(5000);
  });

  it("reads identity and origin settings", () => {
    const config = parseConfig({
      AUTH_SECRET: "s".repeat(32),
      ALLOWED_ORIGINS: "https://app.example.com, http://127.0.0.1:8787/",
    });
    expect(config.AUTH_SECRET).toBe("s".repeat(32));
    expect(config.ALLOWED_ORIGINS).toEqual(["https://app.example.com", "http://127.0.0.1:8787"]);
  });

  it.each([
    ["AUTH_SECRET", "short", "at least 32 characters"],
    ["ALLOWED_ORIGINS", "app.example.com", "origins"],
    ["ALLOWED_ORIGINS", "https://ok.example, chrome-extension://abc", "http\\(s\\) origins"],
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
