// @ts-check
// spike: 50 users, then 500 within 10 s for 2 minutes, then back. k6 run tests/load/k6/spike.js
import { seed as setupUsers, thresholds, userStep } from './lib.js';

/** @type {import('k6/options').Options} */
export const options = {
  stages: [
    { duration: '30s', target: 50 },
    { duration: '10s', target: 500 },
    { duration: '2m', target: 500 },
    { duration: '10s', target: 50 },
    { duration: '30s', target: 50 },
    { duration: '10s', target: 0 },
  ],
  thresholds: thresholds(1000),
};

export function setup() { return setupUsers(); }

/** @param {import('./lib.js').Data} data */
export default function (data) { userStep(data, 1); }
