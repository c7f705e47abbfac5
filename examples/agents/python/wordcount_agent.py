"""wordcount-agent: an a2a-mesh agent in Python, on the a2amesh SDK (sdk/python).

Skill "wordcount": counts the words and lines of the text it is sent and answers
with two artifacts, a JSON data part ({"words", "lines", "top"}) and a one-line
summary. Run it with the SDK installed (tools/build puts it in build/venv):

    build/venv/bin/python examples/agents/python/wordcount_agent.py --node 127.0.0.1:7400
"""

import argparse
import collections

import a2amesh

agent = a2amesh.Agent("wordcount", name="Word Count",
                      description="Counts words and lines, answering with JSON and a summary.")


@agent.skill("wordcount", name="Word count", description="Counts the words and lines of a text.",
             tags=["text", "analysis"], examples=["how many words is this?"])
def wordcount(task):
    words, lines = task.text.split(), len(task.text.splitlines())
    top = collections.Counter(w.lower().strip(".,;:!?\"'()") for w in words).most_common(3)
    task.artifact(data={"words": len(words), "lines": lines,
                        "top": [{"word": w, "count": n} for w, n in top if w]}, name="counts")
    task.artifact(f"{len(words)} word{'s' * (len(words) != 1)}, "
                  f"{lines} line{'s' * (lines != 1)}", name="summary")
    task.complete(f"counted by {task.agent_id}@{task.node_id}")


if __name__ == "__main__":
    flags = argparse.ArgumentParser(description="a2a-mesh wordcount agent (Python)")
    flags.add_argument("--node", help="the meshd node's gRPC address (env A2AMESH_NODE)")
    flags.add_argument("--agent-id", default="wordcount", help="this agent's id on the node")
    flags.add_argument("--max-concurrency", type=int, default=4, help="tasks run at once")
    flags.add_argument("--token", help="bearer token for a node with auth on (env A2AMESH_TOKEN)")
    flags.add_argument("--tls-ca", help="dial the node with TLS, trusting this PEM CA")
    flags.add_argument("--tls-cert", help="client certificate (PEM), for mutual TLS")
    flags.add_argument("--tls-key", help="private key (PEM) of --tls-cert")
    args = flags.parse_args()
    agent.agent_id, agent.max_concurrency = args.agent_id, args.max_concurrency
    agent.run(node=args.node, token=args.token, tls_ca=args.tls_ca, tls_cert=args.tls_cert,
              tls_key=args.tls_key, instance="wordcount-agent (python)")
