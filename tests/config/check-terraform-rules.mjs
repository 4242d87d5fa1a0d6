// The rules of the Terraform modules that need a provider (terraform/aws, terraform/proxmox),
// read from their HCL
// as JSON (@cdktf/hcl2json): what `terraform validate` cannot check here (no provider can be
// downloaded), and the mistakes the reference platform made (../shared/reference): a load
// balancer targeting a port nothing opens, databases in public subnets, hand-written firewall
// rules drifting from the port matrix. Run by tests/terraform/check-terraform.sh; prints one
// line per rule and exits 1 when any fails.
import { parse } from "@cdktf/hcl2json";
import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";

const root = new URL("../..", import.meta.url).pathname;
let failed = 0;
function check(what, ok, detail = "") {
  console.log(`${ok ? "ok  " : "FAIL"}  ${what}${ok || !detail ? "" : `: ${detail}`}`);
  if (!ok) failed = 1;
}

async function readModule(dir) {
  const merged = {};
  for (const f of readdirSync(dir).filter((n) => n.endsWith(".tf")).sort()) {
    const j = await parse(f, readFileSync(join(dir, f), "utf8"));
    for (const [block, byType] of Object.entries(j)) {
      merged[block] ??= {};
      if (Array.isArray(byType)) {
        merged[block] = [...(Array.isArray(merged[block]) ? merged[block] : []), ...byType];
        continue;
      }
      for (const [type, byName] of Object.entries(byType)) {
        merged[block][type] = { ...(merged[block][type] ?? {}), ...byName };
      }
    }
  }
  return merged;
}

// Every resource of a type as [name, body].
const each = (m, type) => Object.entries(m.resource?.[type] ?? {}).map(([n, b]) => [n, b[0]]);

const plan = await readModule(join(root, "terraform/modules/cluster-plan"));
const matrix = plan.locals.flatMap((l) => l.port_matrix ?? []);
const lbTargets = matrix.filter((r) => r.source === "lb" && r.destination === "manager").map((r) => r.port);
check("the cluster plan has a port matrix with the load balancer's targets", matrix.length > 0 && lbTargets.length > 0);

const aws = await readModule(join(root, "terraform/aws"));
check("terraform/aws uses the cluster plan",
  aws.module?.plan?.[0]?.source === "../modules/cluster-plan" && aws.module.plan[0].admin_cidrs === "${var.admin_cidrs}");

const instances = each(aws, "aws_instance");
check("terraform/aws makes the nodes", instances.length > 0);
for (const [name, b] of instances) {
  check(`aws_instance.${name} in a private subnet, no public address`,
    /aws_subnet\.private\[/.test(b.subnet_id) && b.associate_public_ip_address === false, b.subnet_id);
  check(`aws_instance.${name} root volume encrypted`, b.root_block_device?.[0]?.encrypted === true);
  check(`aws_instance.${name} IMDSv2 only`, b.metadata_options?.[0]?.http_tokens === "required");
  check(`aws_instance.${name} placed by the cluster plan`, b.for_each === "${module.plan.nodes}");
}

// Ingress only from the plan's rules: no inline rules, no other rule resources.
const groups = each(aws, "aws_security_group");
check("no security group has inline ingress rules", groups.every(([, b]) => !("ingress" in b)),
  groups.filter(([, b]) => "ingress" in b).map(([n]) => n).join(", "));
check("no aws_security_group_rule (rules come from the cluster plan only)", each(aws, "aws_security_group_rule").length === 0);
const ingress = each(aws, "aws_vpc_security_group_ingress_rule");
check("every ingress rule is the cluster plan's firewall_rules",
  ingress.length === 1 && ingress[0][1].for_each === "${module.plan.firewall_rules}",
  ingress.map(([n, b]) => `${n}: ${b.for_each}`).join("; "));

// The load balancer: public, and every target port one the plan opens from it to the managers.
const lbs = each(aws, "aws_lb");
check("one internet-facing load balancer in the public subnets",
  lbs.length === 1 && lbs[0][1].internal === false && /aws_subnet\.public/.test(lbs[0][1].subnets));
for (const [name, b] of each(aws, "aws_lb_target_group")) {
  check(`aws_lb_target_group.${name} targets port ${b.port}, which the port matrix opens from the load balancer to the managers`,
    lbTargets.includes(b.port), `open: ${lbTargets.join(", ")}`);
}
for (const [name, b] of each(aws, "aws_lb_target_group_attachment")) {
  check(`aws_lb_target_group_attachment.${name} attaches managers only`, /n\.role == "manager"/.test(b.for_each), b.for_each);
}
for (const [name, b] of each(aws, "aws_lb_listener")) {
  check(`aws_lb_listener.${name} (port ${b.port}) is one the matrix opens to the load balancer`,
    matrix.some((r) => r.destination === "lb" && r.port === b.port));
}

const pve = await readModule(join(root, "terraform/proxmox"));
const pvePlan = pve.module?.plan?.[0] ?? {};
check("terraform/proxmox uses the cluster plan on one flat subnet",
  pvePlan.source === "../modules/cluster-plan" && pvePlan.flat_network === true &&
  pvePlan.admin_cidrs === "${var.admin_cidrs}");
const vms = each(pve, "proxmox_virtual_environment_vm");
check("terraform/proxmox makes the nodes", vms.length === 1 && vms[0][1].for_each === "${module.plan.nodes}");
for (const [name, b] of vms) {
  check(`proxmox_virtual_environment_vm.${name} at the plan's address`,
    /each\.value\.address/.test(b.initialization?.[0]?.ip_config?.[0]?.ipv4?.[0]?.address ?? ""));
  check(`proxmox_virtual_environment_vm.${name} behind Proxmox's firewall`, b.network_device?.[0]?.firewall === true);
}
const options = each(pve, "proxmox_virtual_environment_firewall_options");
check("every node's firewall is on and drops what no rule accepts",
  options.length === 1 && options[0][1].for_each === "${module.plan.nodes}" &&
  options[0][1].enabled === true && options[0][1].input_policy === "DROP");
const fw = each(pve, "proxmox_virtual_environment_firewall_rules");
check("every firewall rule is the cluster plan's (no rule written by hand)",
  fw.length === 1 && !("rule" in fw[0][1]) &&
  /local\.rules_by_role/.test(fw[0][1].dynamic?.rule?.[0]?.for_each ?? "") &&
  pve.locals.some((l) => /module\.plan\.firewall_rules/.test(JSON.stringify(l.rules_by_role ?? ""))),
  JSON.stringify(fw.map(([n]) => n)));
for (const dir of ["terraform/aws", "terraform/proxmox"]) {
  const text = readdirSync(join(root, dir)).filter((f) => f.endsWith(".tf"))
    .map((f) => readFileSync(join(root, dir, f), "utf8")).join("\n");
  const opened = text.split("\n").filter((l) => l.includes("0.0.0.0/0") && !/route|egress|outbound|^\s*#/i.test(l) &&
    !/cidr_block\s*=\s*"0\.0\.0\.0\/0"/.test(l) && !/cidr_ipv4\s*=\s*"0\.0\.0\.0\/0"/.test(l));
  check(`${dir} opens nothing to 0.0.0.0/0 by hand (only the plan's load balancer rules do)`, opened.length === 0,
    opened.join(" | "));
}
process.exit(failed);
