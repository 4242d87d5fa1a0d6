// @ts-check
// The users of hosting's load scenarios (k6): the same mix and think time as
// tests/load/users.lua, so k6 and wrk runs compare. BASE_URL: the front door (the local
// stack's HAProxy by default).
import http from 'k6/http';
import { check, sleep } from 'k6';

export const BASE_URL = __ENV.BASE_URL || 'http://127.0.0.1:8080';

/** What setup() hands every user: ids of users that exist (ids have gaps). */
/** @typedef {{ ids: number[] }} Data */

/** Thresholds every scenario holds to: under 1 % errors, p95 under `p95ms`. */
export function thresholds(/** @type {number} */ p95ms) {
  return {
    http_req_failed: ['rate<0.01'],
    http_req_duration: [`p(95)<${p95ms}`],
    checks: ['rate>0.99'],
  };
}

/**
 * One user's step: a request from the mix, then `thinkSeconds` (+-20 %).
 * @param {Data} data
 * @param {number} thinkSeconds
 */
export function userStep(data, thinkSeconds) {
  const r = Math.random();
  if (r < 0.6) {
    const id = data.ids[Math.floor(Math.random() * data.ids.length)];
    const res = http.get(`${BASE_URL}/api/users/${id}`, { tags: { name: 'GET /api/users/:id' } });
    check(res, { 'user 200': (x) => x.status === 200 });
  } else if (r < 0.9) {
    const res = http.get(`${BASE_URL}/api/users`, { tags: { name: 'GET /api/users' } });
    check(res, {
      'list 200': (x) => x.status === 200,
      'list has data': (x) => Array.isArray(/** @type {any} */ (x.json())?.data),
    });
  } else {
    const email = `k6-${__VU}-${__ITER}-${Date.now()}@example.com`;
    const res = http.post(`${BASE_URL}/api/users`, JSON.stringify({ name: `VU ${__VU}`, email }), {
      headers: { 'Content-Type': 'application/json' },
      tags: { name: 'POST /api/users' },
    });
    check(res, { 'created 201': (x) => x.status === 201 });
  }
  sleep(thinkSeconds * (0.8 + 0.4 * Math.random()));
}

/** @returns {number[]} the ids of the (up to 100) newest users */
function listIds() {
  const res = http.get(`${BASE_URL}/api/users`, { headers: { 'Cache-Control': 'no-cache' } });
  const body = /** @type {{ data?: { id: number }[] }} */ (res.json());
  return (body.data ?? []).map((u) => u.id);
}

/**
 * Creates users until there are 100 and returns their ids (k6 runs it once, before the users).
 * @returns {Data}
 */
export function seed() {
  for (let i = listIds().length; i < 100; i++) {
    http.post(`${BASE_URL}/api/users`,
      JSON.stringify({ name: `Seed ${i}`, email: `seed-${i}-${Date.now()}@example.com` }),
      { headers: { 'Content-Type': 'application/json' } });
  }
  return { ids: listIds() };
}
