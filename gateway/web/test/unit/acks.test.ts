import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AckTracker } from '../../src/terminals/protocol';
import { FakeTimers } from './fakes';

test('a quiet terminal is acknowledged shortly after its output is written', () => {
  const timers = new FakeTimers();
  const sent: number[] = [];
  const acks = new AckTracker((bytes) => sent.push(bytes), timers, 1024, 50);
  acks.onReceived(10);
  acks.onReceived(20);
  acks.onWritten(10);
  assert.deepEqual(sent, [], 'no ack before the delay');
  acks.onWritten(20);
  timers.advance(49);
  assert.deepEqual(sent, []);
  timers.advance(1);
  assert.deepEqual(sent, [30], 'one cumulative ack for both writes');
  timers.advance(1000);
  assert.deepEqual(sent, [30], 'nothing new, nothing sent');
});

test('heavy output is acknowledged every step, cumulatively', () => {
  const timers = new FakeTimers();
  const sent: number[] = [];
  const acks = new AckTracker((bytes) => sent.push(bytes), timers, 1024, 50);
  for (let i = 0; i < 10; i++) {
    acks.onReceived(300);
    acks.onWritten(300);
  }
  assert.deepEqual(sent, [1200, 2400], 'an ack as soon as a step is unacknowledged');
  timers.advance(50);
  assert.deepEqual(sent, [1200, 2400, 3000], 'the rest after the delay');
  assert.equal(acks.ackedBytes, 3000);
  assert.equal(acks.receivedBytes, 3000);
});

test('only bytes written to the emulator are acknowledged', () => {
  const timers = new FakeTimers();
  const sent: number[] = [];
  const acks = new AckTracker((bytes) => sent.push(bytes), timers, 1024, 50);
  acks.onReceived(5000);
  timers.advance(1000);
  assert.deepEqual(sent, [], 'received but not yet written');
  acks.onWritten(2000);
  assert.deepEqual(sent, [2000]);
  acks.onWritten(99999);
  assert.deepEqual(sent, [2000, 5000], 'never more than was received');
});

test('the default step stays below the protocol limit of 128 KiB', () => {
  const timers = new FakeTimers();
  const sent: number[] = [];
  const acks = new AckTracker((bytes) => sent.push(bytes), timers);
  let total = 0;
  for (let i = 0; i < 512; i++) {
    acks.onReceived(1024);
    acks.onWritten(1024);
    total += 1024;
  }
  let last = 0;
  for (const ack of sent) {
    assert.ok(ack - last <= 128 * 1024, `gap ${ack - last}`);
    last = ack;
  }
  assert.ok(total - last < 128 * 1024);
});

test('a closed tracker sends nothing more', () => {
  const timers = new FakeTimers();
  const sent: number[] = [];
  const acks = new AckTracker((bytes) => sent.push(bytes), timers, 1024, 50);
  acks.onReceived(10);
  acks.onWritten(10);
  acks.close();
  timers.advance(100);
  acks.flush();
  assert.deepEqual(sent, []);
  assert.equal(timers.count, 0, 'its timer is cleared');
});
