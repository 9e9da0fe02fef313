import { snapshot } from "monitor:plugin/host@0.1.1";

export const plugin = {
  describe() {
    return { name: "js-process-count", version: "0.1.0", summary: "how many processes run", capabilities: [] };
  },
  configure(config) {
    if (config.trim() !== "") throw `js-process-count takes no configuration, found: ${config.trim()}`;
  },
};

export const metrics = {
  collect() {
    return [{ name: "processes", value: snapshot().processCount, unit: "", labels: [] }];
  },
};
