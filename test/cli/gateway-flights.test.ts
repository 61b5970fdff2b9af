import assert from 'node:assert/strict';
import type { ServerResponse } from 'node:http';
import { describe, it } from 'node:test';
import { Flight, Flights } from '../../src/cli/gateway/flights.js';

const flight = () => new Flight({} as ServerResponse, undefined);

describe('Flights', () => {
  it('lists the flights added and not removed, newest first, whatever order they land in', () => {
    const flights = new Flights();
    const [a, b, c, d] = [flight(), flight(), flight(), flight()];
    for (const each of [a, b, c, d]) flights.add(each);
    assert.equal(flights.remove(c), true); // from the middle
    assert.equal(flights.remove(d), true); // the newest
    assert.deepEqual(flights.toArray(), [b, a]);
    assert.equal(flights.size, 2);
    assert.equal(flights.remove(a), true); // the oldest
    assert.deepEqual(flights.toArray(), [b]);
    flights.add(c);
    assert.deepEqual(flights.toArray(), [c, b]);
    assert.equal(flights.size, 2);
  });

  it('removes a flight once: a second remove says false and changes nothing', () => {
    const flights = new Flights();
    const [a, b] = [flight(), flight()];
    flights.add(a);
    flights.add(b);
    assert.equal(flights.remove(a), true);
    assert.equal(flights.remove(a), false);
    assert.equal(flights.remove(flight()), false); // never added
    assert.deepEqual(flights.toArray(), [b]);
    assert.equal(flights.size, 1);
  });

  it('keeps no link from a removed flight to the others, nor from them to it', () => {
    const flights = new Flights();
    const all = Array.from({ length: 50 }, flight);
    for (const each of all) flights.add(each);
    // Land in a scrambled order, as requests do.
    for (let i = 0; i < all.length; i++) flights.remove(all[(i * 17) % all.length] as Flight);
    assert.equal(flights.size, 0);
    assert.deepEqual(flights.toArray(), []);
    for (const each of all) {
      assert.equal(each.previous, undefined);
      assert.equal(each.next, undefined);
    }
  });
});
