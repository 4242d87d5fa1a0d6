// @ts-check
// basic: 100 users for 5 minutes (ramping up over 30 s). k6 run tests/load/k6/basic.js
import { seed as setupUsers, thresholds, userStep } from './lib.js';

/** @type {import('k6/options').Options} */
export const options = {
  stages: [
    { duration: '30s', target: 100 },
    { duration: '5m', target: 100 },
    { duration: '15s', target: 0 },
  ],
  thresholds: thresholds(500),
};

export function setup() { return setupUsers(); }

/** @param {import('./lib.js').Data} data */
export default function (data) { userStep(data, 1); }
