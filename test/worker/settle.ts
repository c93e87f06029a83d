/**
 * Each workers test file ends by giving its rooms a moment: a room still logging the last
 * test's closing sockets when the file's environment is torn down makes workerd report an
 * EnvironmentTeardownError (its log line has nowhere to go). Bounded: 300 ms a file.
 */
import { afterAll } from "vitest";

afterAll(async () => {
  await new Promise((resolve) => setTimeout(resolve, 300));
});
