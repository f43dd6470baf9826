#!/bin/sh
# A 3-node RabbitMQ cluster on this machine, beside the system's node (which it leaves alone):
# nodes keten-c1..3@localhost, AMQP on ports BASE_PORT+1..3, management on 10000 more, Erlang
# distribution on 20000 more, data and logs under DIR owned by the rabbitmq user, the rabbitmq
# user's Erlang cookie (the one the system node uses). Needs root (it runs the nodes as rabbitmq).
#
#   scripts/rabbitmq-cluster.sh up      start the nodes and join them into one cluster
#   scripts/rabbitmq-cluster.sh stop N  stop node N (1..3) as a failure would (its VM ends)
#   scripts/rabbitmq-cluster.sh start N start node N again; it rejoins the cluster
#   scripts/rabbitmq-cluster.sh down    stop every node and delete DIR
#   scripts/rabbitmq-cluster.sh uri     the AMQP URIs of the nodes, for AMQP_URI (kombu fails over)
set -eu

DIR=${KETEN_CLUSTER_DIR:-/tmp/keten-rabbitmq-cluster}
BASE_PORT=${KETEN_CLUSTER_BASE_PORT:-5780}
NODES="1 2 3"

node() { echo "keten-c$1@localhost"; }
port() { echo $((BASE_PORT + $1)); }

as_rabbitmq() {
    # The system's rabbitmq-env.conf names the system node: each node reads an env file of its own.
    su -s /bin/sh rabbitmq -c "HOME=/var/lib/rabbitmq RABBITMQ_CONF_ENV_FILE=$DIR/n$1/rabbitmq-env.conf $2"
}

ctl() { as_rabbitmq "$1" "rabbitmqctl -n $(node "$1") $2"; }

prepare() {
    n=$1
    mkdir -p "$DIR/n$n/mnesia" "$DIR/n$n/log"
    cat >"$DIR/n$n/rabbitmq-env.conf" <<EOF
NODENAME=$(node "$n")
NODE_PORT=$(port "$n")
DIST_PORT=$(($(port "$n") + 20000))
MNESIA_BASE=$DIR/n$n/mnesia
LOG_BASE=$DIR/n$n/log
CONFIG_FILE=$DIR/n$n/rabbitmq
ENABLED_PLUGINS_FILE=$DIR/n$n/enabled_plugins
PID_FILE=$DIR/n$n/pid
ERL_EPMD_ADDRESS=127.0.0.1
export ERL_FLAGS="-kernel inet_dist_use_interface {127,0,0,1}"
EOF
    cat >"$DIR/n$n/rabbitmq.conf" <<EOF
listeners.tcp.local = 127.0.0.1:$(port "$n")
management.tcp.ip = 127.0.0.1
management.tcp.port = $(($(port "$n") + 10000))
EOF
    echo "[rabbitmq_management]." >"$DIR/n$n/enabled_plugins"
    chown -R rabbitmq:rabbitmq "$DIR"
}

start() {
    as_rabbitmq "$1" "setsid rabbitmq-server >$DIR/n$1/server.out 2>&1 </dev/null &"
    # await_startup gives up at once on a node that has not reached epmd yet: wait for that.
    tries=0
    until ctl "$1" "ping" >/dev/null 2>&1; do
        tries=$((tries + 1))
        [ "$tries" -lt 120 ] || { echo "node $1 did not start; see $DIR/n$1/log" >&2; exit 1; }
        sleep 1
    done
    ctl "$1" "await_startup --timeout 180" >/dev/null
}

case "${1:-}" in
up)
    mkdir -p "$DIR"
    for n in $NODES; do prepare "$n"; done
    for n in $NODES; do start "$n"; done
    for n in 2 3; do
        ctl "$n" stop_app >/dev/null
        ctl "$n" "join_cluster $(node 1)" >/dev/null
        ctl "$n" start_app >/dev/null
    done
    ctl 1 "await_online_nodes 3 --timeout 120" >/dev/null 2>&1 || ctl 1 cluster_status
    # Keten's own queues are quorum queues; nameko's RPC queues (requests rpc-<service>, replies
    # rpc.reply-<service>-<id>) are classic ones, which live on one node: mirror them, or a
    # stopped node takes RPC away (docs/operations.md, "A 3-node RabbitMQ cluster").
    ctl 1 "set_policy --apply-to queues keten-rpc-mirrored '^rpc' '{\"ha-mode\":\"all\",\"ha-sync-mode\":\"automatic\"}'" >/dev/null
    echo "cluster up: $(node 1) $(node 2) $(node 3)"
    ;;
stop)
    ctl "$2" "stop" >/dev/null
    ;;
start)
    start "$2"
    ;;
down)
    for n in $NODES; do
        [ -f "$DIR/n$n/rabbitmq-env.conf" ] && ctl "$n" "stop" >/dev/null 2>&1 || true
    done
    rm -rf "$DIR"
    ;;
uri)
    for n in $NODES; do printf "amqp://guest:guest@127.0.0.1:%s/%s" "$(port "$n")" "$([ "$n" = 3 ] || echo ';')"; done
    echo
    ;;
*)
    echo "usage: $0 up|stop N|start N|down|uri" >&2
    exit 2
    ;;
esac
