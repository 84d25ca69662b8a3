/*
 * replication.pml: the epoch/promotion and replicate/ack protocol of
 * vnvram's replication engine (docs/replication.md), for spin.
 *
 * Three replicas of one volume. Any node may crash (losing its memory) and
 * restart; any message may be lost; messages between two nodes arrive in
 * order, messages from different peers interleave freely. (In vnvramd a
 * node's requests to a peer travel in order on one ZeroMQ connection, its
 * data DEALER, and its answers to that peer in order on another, the peer's
 * control DEALER; the channel below orders both together.) Each node is a single-threaded event loop: every
 * action below is atomic. Abstractions:
 *   - the region is a set of writes (a bitmask of write ids); a write is
 *     identified by (epoch, sequence) on the wire and by its bit here;
 *   - a resync is a full copy in one message (the bitmap resync is an
 *     optimisation of the same step);
 *   - timeouts (peer expiry, slow replica) are non-deterministic choices;
 *   - the promise (highest epoch accepted) is kept in a state file and
 *     survives a crash; the region's memory does not.
 *
 * Checked (assert; plus the LTL claim `safe`):
 *   P1 at most one primary per epoch;
 *   P2 no acknowledged write is lost: a new primary's adopted content holds
 *      every write acknowledged so far, and so does every later primary.
 * Bounds: EPOCHS epochs, WRITES writes, CRASHES crashes in a run.
 */

#define N        3
#define MAJ      2
#define EPOCHS   3
#define WRITES   2
#define CRASHES  1
#define NONE     255
#define QLEN     1

/* Mutants: each breaks one rule of the protocol; models/check-replication.sh
 * checks that spin finds the violation, so the properties are not vacuous.
 *   BUG_MINORITY_ACK     acknowledge a write held by the primary alone
 *   BUG_SERVE_AT_ONCE    serve right after the vote, before a majority holds
 *                        the adopted content
 *   BUG_AMNESIAC_VOTES   a node that lost its memory in a crash still votes */
#ifdef BUG_MINORITY_ACK
#define ACK_QUORUM 1
#else
#define ACK_QUORUM MAJ
#endif
#ifdef BUG_SERVE_AT_ONCE
#define SERVE_QUORUM 1
#else
#define SERVE_QUORUM MAJ
#endif
#ifdef BUG_AMNESIAC_VOTES
#define AMNESIAC_VOTES true
#else
#define AMNESIAC_VOTES false
#endif

mtype = { PROPOSE, ACCEPT, REJECT, REPL, ACK, GAP, STALE, RESYNC, SYNCED };
mtype = { REPLICA, CANDIDATE, PRIMARY };

/* q[from*N+to]: fields type, epoch, a, b, c */
chan q[N*N] = [QLEN] of { mtype, byte, byte, byte, byte };

/* Per node. */
byte  promised[N];   /* highest epoch promised (state file: survives crash) */
byte  lastE[N];      /* (lastE, lastS): the last write applied, in order   */
byte  lastS[N];
byte  data[N];       /* writes held in this node's copy of the region      */
bool  up[N];
bool  vouch[N];      /* holds everything it ever acknowledged (may vote)   */
mtype role[N];
bool  serving[N];    /* primary: a majority holds its base; serves the guest */
byte  curE[N];       /* the epoch it is candidate or primary of            */
byte  votes[N];      /* candidate: voters so far (bitmask)                  */
byte  bestE[N];      /* candidate: freshest state seen among the voters     */
byte  bestS[N];
byte  bestD[N];
byte  insync[N];     /* primary: in-sync replicas (bitmask)                 */
byte  pendW[N];      /* primary: the write awaiting acks, NONE if none      */
byte  pendS[N];
byte  ackers[N];     /* primary: holders of the pending write (bitmask)     */

/* Whole system (observer state for the properties). */
byte primaryOf[EPOCHS + 1];
byte acked;          /* writes acknowledged to the guest */
byte ackE[WRITES];   /* the epoch each write was acknowledged in (0: not yet) */
byte nextW;
byte crashes;
bool violation;

/* Scratch for one atomic step; not part of the state. */
hidden byte t2, e2, a2, b2, c2, w, wi;

#define BIT(i)   (1 << (i))
#define FRESHER(e1, s1, e2, s2)  ((e1) > (e2) || ((e1) == (e2) && (s1) > (s2)))
#define POP(m)   (((m) & 1) + (((m) >> 1) & 1) + (((m) >> 2) & 1))

/* Lossy send: the message may vanish (a dropped connection, a full queue). */
inline send(from, to, t, e, a, b, c) {
  if
  :: nfull(q[from*N + to]) -> q[from*N + to]!t, e, a, b, c
  :: true
  fi
}

inline step_down(me) {
  role[me] = REPLICA; curE[me] = 0; serving[me] = false;
  pendW[me] = NONE; pendS[me] = 0; ackers[me] = 0; insync[me] = 0;
  votes[me] = 0; bestE[me] = 0; bestS[me] = 0; bestD[me] = 0
}

/* P2: a serving primary of epoch e holds every write acknowledged in an
 * epoch before e, whenever the acknowledgement happened. (A write
 * acknowledged in a newer epoch is not its business: it can no longer get
 * anything acknowledged, and issue 6's frontend ignores a superseded
 * activation.) Checked when a primary starts serving and at every
 * acknowledgement. */
inline check_p2(p) {
  if
  :: serving[p] ->
     for (wi : 0 .. WRITES - 1) {
       if
       :: ackE[wi] != 0 && ackE[wi] < curE[p] && !(data[p] & BIT(wi)) -> violation = true
       :: else
       fi
     }
     assert(!violation)                         /* P2 */
  :: else
  fi
}

/* A primary acknowledges its pending write when every in-sync replica and
 * a majority of the group (itself included) hold it. */
inline maybe_ack(me) {
  if
  :: role[me] == PRIMARY && pendW[me] != NONE &&
     (insync[me] & ackers[me]) == insync[me] && POP(ackers[me] | BIT(me)) >= ACK_QUORUM ->
       printf("node %d: ACKNOWLEDGED write %d (ackers %d insync %d)\n", me, pendW[me], ackers[me], insync[me]);
       acked = acked | BIT(pendW[me]);
       ackE[pendW[me]] = curE[me];
       check_p2(0); check_p2(1); check_p2(2);
       pendW[me] = NONE; pendS[me] = 0; ackers[me] = 0
  :: else
  fi
}

/* A new primary serves the guest only once a majority of the group (itself
 * included) holds its adopted content in its epoch: a primary whose
 * election was overtaken by a newer epoch can never get there. */
inline maybe_serve(me) {
  if
  :: role[me] == PRIMARY && !serving[me] && POP(insync[me] | BIT(me)) >= SERVE_QUORUM ->
     printf("node %d: SERVING epoch %d with %d, acked %d\n", me, curE[me], data[me], acked);
     serving[me] = true;
     check_p2(me)
  :: else
  fi
}

inline handle(me, from) {
  q[from*N + me]?t2, e2, a2, b2, c2;
  printf("node %d <- %d: %e e=%d a=%d b=%d c=%d\n", me, from, t2, e2, a2, b2, c2);
  if
  :: !up[me] -> skip                  /* a down node's queue drains to nothing */
  :: up[me] && t2 == PROPOSE ->
     if
     :: e2 > promised[me] ->
        promised[me] = e2;              /* persisted before replying */
        if :: role[me] != REPLICA -> step_down(me) :: else fi;
        if
        :: vouch[me] || AMNESIAC_VOTES -> send(me, from, ACCEPT, e2, lastE[me], lastS[me], data[me])
        :: else      -> send(me, from, REJECT, e2, promised[me], 0, 0)
        fi
     :: else -> send(me, from, REJECT, e2, promised[me], 0, 0)
     fi
  :: up[me] && t2 == ACCEPT ->
     if
     :: role[me] == CANDIDATE && curE[me] == e2 && promised[me] == e2 ->
        votes[me] = votes[me] | BIT(from);
        if
        :: FRESHER(a2, b2, bestE[me], bestS[me]) ->
           bestE[me] = a2; bestS[me] = b2; bestD[me] = c2
        :: else
        fi;
        if
        :: POP(votes[me]) >= MAJ ->
           /* Promotion: adopt the freshest content among the majority. */
           if :: primaryOf[e2] != NONE -> violation = true :: else fi;
           assert(primaryOf[e2] == NONE);             /* P1 */
           primaryOf[e2] = me;
           data[me] = bestD[me];
           printf("node %d: PRIMARY of epoch %d, adopted %d from (%d,%d), acked %d\n", me, e2, data[me], bestE[me], bestS[me], acked);
           lastE[me] = e2; lastS[me] = 0;
           role[me] = PRIMARY; vouch[me] = true;
           insync[me] = 0; pendW[me] = NONE;
           votes[me] = 0; bestE[me] = 0; bestS[me] = 0; bestD[me] = 0;
           maybe_serve(me)
        :: else
        fi
     :: else
     fi
  :: up[me] && t2 == REJECT ->
     if
     :: role[me] == CANDIDATE && a2 > promised[me] -> promised[me] = a2; step_down(me)
     :: else
     fi
  :: up[me] && t2 == REPL ->
     if
     :: e2 < promised[me] -> send(me, from, STALE, promised[me], 0, 0, 0)   /* fenced */
     :: else ->
        if :: e2 > promised[me] -> promised[me] = e2 :: else fi;
        if :: role[me] != REPLICA -> step_down(me) :: else fi;
        if
        :: lastE[me] == e2 && a2 == lastS[me] + 1 ->
           data[me] = data[me] | BIT(b2); lastS[me] = a2;
           send(me, from, ACK, e2, a2, 0, 0)
        :: else -> send(me, from, GAP, e2, lastS[me] + 1, 0, 0)  /* missing base or sequence */
        fi
     fi
  :: up[me] && t2 == RESYNC ->
     if
     :: e2 < promised[me] -> send(me, from, STALE, promised[me], 0, 0, 0)
     :: else ->
        if :: e2 > promised[me] -> promised[me] = e2 :: else fi;
        if :: role[me] != REPLICA -> step_down(me) :: else fi;
        data[me] = b2; lastE[me] = e2; lastS[me] = a2; vouch[me] = true;
        send(me, from, SYNCED, e2, a2, 0, 0)
     fi
  :: up[me] && t2 == ACK ->
     if
     :: role[me] == PRIMARY && curE[me] == e2 && pendW[me] != NONE && pendS[me] == a2 ->
        ackers[me] = ackers[me] | BIT(from); maybe_ack(me)
     :: else
     fi
  :: up[me] && t2 == GAP ->
     if
     :: role[me] == PRIMARY && curE[me] == e2 ->
        insync[me] = insync[me] & ~BIT(from); maybe_ack(me)   /* outdated: resync */
     :: else
     fi
  :: up[me] && t2 == SYNCED ->
     if
     :: role[me] == PRIMARY && curE[me] == e2 && a2 == lastS[me] && pendW[me] == NONE ->
        insync[me] = insync[me] | BIT(from);
        maybe_serve(me)
     :: else
     fi
  :: up[me] && t2 == STALE ->
     if
     :: e2 > promised[me] -> promised[me] = e2; step_down(me)   /* fenced */
     :: else
     fi
  fi
}

proctype Node(byte me) {
  byte o1 = (me + 1) % N, o2 = (me + 2) % N;
end:
  do
  /* Messages from either peer. */
  :: atomic { nempty(q[o1*N + me]) -> handle(me, o1) }
  :: atomic { nempty(q[o2*N + me]) -> handle(me, o2) }

  /* Crash: memory and every volatile role are gone; the promise stays. */
  :: atomic { up[me] && crashes < CRASHES ->
       printf("node %d: CRASH\n", me);
       crashes++; up[me] = false; step_down(me);
       data[me] = 0; lastE[me] = 0; lastS[me] = 0; vouch[me] = false }
  :: atomic { !up[me] -> up[me] = true }

  /* Stand for election: epoch promised + 1, own vote first. */
  :: atomic { up[me] && role[me] != PRIMARY && vouch[me] && promised[me] < EPOCHS ->
       promised[me]++; curE[me] = promised[me]; role[me] = CANDIDATE;
       printf("node %d: CANDIDATE for epoch %d with (%d,%d) data %d\n", me, curE[me], lastE[me], lastS[me], data[me]);
       votes[me] = BIT(me);
       bestE[me] = lastE[me]; bestS[me] = lastS[me]; bestD[me] = data[me];
       send(me, o1, PROPOSE, curE[me], 0, 0, 0);
       send(me, o2, PROPOSE, curE[me], 0, 0, 0) }

  /* Primary: a new guest write (one in flight), applied locally first and
   * shipped to the in-sync replicas. */
  :: atomic { up[me] && serving[me] && pendW[me] == NONE && nextW < WRITES &&
              promised[me] == curE[me] ->
       w = nextW; nextW++;
       printf("node %d: WRITE %d at (%d,%d) insync %d\n", me, w, curE[me], lastS[me] + 1, insync[me]);
       data[me] = data[me] | BIT(w); lastS[me]++;
       pendW[me] = w; pendS[me] = lastS[me]; ackers[me] = 0;
       if :: insync[me] & BIT(o1) -> send(me, o1, REPL, curE[me], lastS[me], w, 0) :: else fi;
       if :: insync[me] & BIT(o2) -> send(me, o2, REPL, curE[me], lastS[me], w, 0) :: else fi;
       maybe_ack(me) }

  /* Primary: resync a replica that is not in sync (full copy), when
   * nothing else is on the way to it. */
  :: atomic { up[me] && role[me] == PRIMARY && !(insync[me] & BIT(o1)) &&
              empty(q[me*N + o1]) ->
       send(me, o1, RESYNC, curE[me], lastS[me], data[me], 0) }
  :: atomic { up[me] && role[me] == PRIMARY && !(insync[me] & BIT(o2)) &&
              empty(q[me*N + o2]) ->
       send(me, o2, RESYNC, curE[me], lastS[me], data[me], 0) }

  /* Primary: an in-sync replica that holds up a write (slow, or its ack
   * lost) or whose heartbeats stopped is marked outdated; it is resynced,
   * never silently dropped. */
  :: atomic { up[me] && role[me] == PRIMARY && (insync[me] & BIT(o1)) &&
              (pendW[me] != NONE || !up[o1]) ->
       insync[me] = insync[me] & ~BIT(o1); maybe_ack(me) }
  :: atomic { up[me] && role[me] == PRIMARY && (insync[me] & BIT(o2)) &&
              (pendW[me] != NONE || !up[o2]) ->
       insync[me] = insync[me] & ~BIT(o2); maybe_ack(me) }
  od
}

ltl safe { [] !violation }

init {
  byte i;
  atomic {
    for (i : 0 .. EPOCHS) { primaryOf[i] = NONE }
    for (i : 0 .. N - 1) {
      up[i] = true; vouch[i] = true; role[i] = REPLICA; pendW[i] = NONE
    }
    run Node(0); run Node(1); run Node(2)
  }
}
