// Ours, not upstream's: stands in for the suite's node-imports.js. See ../harness.js and NOTICE.
import "../harness.js";
