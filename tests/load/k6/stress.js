// @ts-check
// stress: 1000 users with 0.1 s think time for 5 minutes, stepping up. k6 run tests/load/k6/stress.js
import { seed as setupUsers, thresholds, userStep } from './lib.js';

/** @type {import('k6/options').Options} */
export const options = {
  stages: [
    { duration: '1m', target: 250 },
    { duration: '1m', target: 500 },
    { duration: '1m', target: 1000 },
    { duration: '5m', target: 1000 },
    { duration: '30s', target: 0 },
  ],
  thresholds: thresholds(2000),
};

export function setup() { return setupUsers(); }

/** @param {import('./lib.js').Data} data */
export default function (data) { userStep(data, 0.1); }
