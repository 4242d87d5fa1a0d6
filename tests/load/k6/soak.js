// @ts-check
// soak: 200 users for 2 hours. k6 run tests/load/k6/soak.js
import { seed as setupUsers, thresholds, userStep } from './lib.js';

/** @type {import('k6/options').Options} */
export const options = {
  stages: [
    { duration: '2m', target: 200 },
    { duration: '2h', target: 200 },
    { duration: '2m', target: 0 },
  ],
  thresholds: thresholds(500),
};

export function setup() { return setupUsers(); }

/** @param {import('./lib.js').Data} data */
export default function (data) { userStep(data, 1); }
