// Users and fleet roles, for administrators: every user, a new user (the
// password and TOTP secret shown once, as `porthole users create` prints
// them), and per fleet its members, a role set or changed, a member
// removed (`porthole users grant|revoke`), a user reset or deleted
// (`porthole users reset|delete`). Routes: GET and POST /api/v1/users,
// POST /api/v1/users/{user}/reset and DELETE /api/v1/users/{user}
// (administrators), GET, PUT and DELETE
// /api/v1/fleets/{fleet}/members[/{user}]. The header shows the page to
// administrators only; anyone else who opens it sees the API's refusal.
import { call, message } from "./api.js";
import { type Child, h, replace, setText } from "./dom.js";
import type { Console, Page } from "./page.js";
import { when } from "./time.js";
import type { CreateUserResponse, Fleet, Member, User } from "./types.js";
import { act, plural, redraw } from "./ui.js";

const roles = ["owner", "operator", "auditor"] as const;

function roleSelect(id: string, value: string, label?: string): HTMLSelectElement {
  const sel = h("select", { id, "aria-label": label ?? null }, roles.map((r) => h("option", { value: r }, r)));
  sel.value = value;
  return sel;
}

export function usersPage(app: Console): Page {
  const heading = h("h1", { tabindex: -1 }, "Users and fleet roles");
  const state = h("p", { class: "note", id: "users-state", role: "status" }, "Loading users…");
  const userList = h("div", { id: "user-list" });
  const result = h("div", { id: "result", class: "result" });
  const created = h("div", { id: "created" });
  const email = h("input", { id: "new-email", type: "email", autocomplete: "off", spellcheck: "false", required: true });
  const admin = h("input", { id: "new-admin", type: "checkbox" });
  const create = h("button", { type: "submit", id: "create-user" }, "Create user");
  const fleetSel = h("select", { id: "members-fleet" });
  const memberState = h("p", { class: "note", id: "members-state", role: "status" });
  const memberList = h("div", { id: "member-list" });
  const addUser = h("input", { id: "add-user", type: "email", autocomplete: "off", spellcheck: "false", list: "user-emails" });
  const userEmails = h("datalist", { id: "user-emails" });
  const addRole = roleSelect("add-role", "operator");
  const add = h("button", { type: "submit", id: "add-member" }, "Set role");

  function loadUsers(): void {
    call<User[]>("GET", "/api/v1/users").then((us) => {
      setText(state, `${plural(us.length, "user")}.`);
      replace(userEmails, us.map((u) => h("option", { value: u.email })));
      redraw(userList, h("div", { class: "table-wrap" }, h("table", { class: "users" },
        h("caption", { class: "visually-hidden" }, "Users"),
        h("thead", {}, h("tr", {},
          h("th", { scope: "col" }, "Email"),
          h("th", { scope: "col" }, "Administrator"),
          h("th", { scope: "col" }, "Created"),
          h("th", { scope: "col" }, "ID"),
          h("th", { scope: "col" }, "Actions"))),
        h("tbody", {}, us.map((u) => h("tr", { "data-id": u.id },
          h("th", { scope: "row", "data-label": "Email" }, u.email),
          h("td", { "data-label": "Administrator" }, u.admin ? "yes" : "no"),
          h("td", { "data-label": "Created" }, when(u.created_at)),
          h("td", { "data-label": "ID" }, h("code", {}, u.id)),
          h("td", { "data-label": "Actions" }, userActions(u))))))));
    }, (err: unknown) => {
      state.setAttribute("role", "alert");
      state.className = "error";
      setText(state, "Refused: " + message(err));
      form.hidden = true;
      membersSection.hidden = true;
    });
  }

  // userActions are a user's Reset and Delete (neither for oneself), each
  // asked again in place before anything is sent: both end the user's
  // logins and open sessions.
  function userActions(u: User): Node {
    const cell = h("div", { class: "row-actions" });
    const ask = (verb: string, said: string, work: () => Promise<string>): HTMLButtonElement => {
      const b = h("button", { type: "button", class: verb === "Delete" ? "danger" : "secondary", "data-key": `${verb}:${u.id}`,
        "aria-label": `${verb} ${u.email}` }, verb);
      b.addEventListener("click", () => {
        const yes = h("button", { type: "button", class: "danger", "data-key": `confirm:${u.id}` }, `Yes, ${verb.toLowerCase()}`);
        const no = h("button", { type: "button", class: "secondary" }, "Cancel");
        no.addEventListener("click", () => {
          replace(cell, buttons());
          (cell.querySelector("button") as HTMLButtonElement | null)?.focus();
        });
        yes.addEventListener("click", () => act(yes, result, work, loadUsers));
        replace(cell, h("span", { role: "group", "aria-label": `${verb} ${u.email}?` },
          h("span", { class: "note" }, said + " "), yes, " ", no));
        no.focus();
      });
      return b;
    };
    // Not oneself either way: a reset ends the session showing its new
    // secrets, which would vanish with the page before they were copied.
    const buttons = (): Child[] => u.id === app.me.id ? [h("span", { class: "none" }, "(you)")] : [
      ask("Reset", `New secrets for ${u.email}? Their logins, passkeys and open sessions end.`, async () => {
        replace(created);
        const got = await call<CreateUserResponse>("POST", `/api/v1/users/${encodeURIComponent(u.id)}/reset`, {});
        showCreated(got, `${got.user.email}'s new login`);
        return `${u.email} has a new password and authenticator secret (below); their logins, passkeys and open sessions ended.`;
      }),
      " ",
      ask("Delete", `Delete ${u.email}? Their logins, passkeys, roles and open sessions end.`, async () => {
        await call<void>("DELETE", `/api/v1/users/${encodeURIComponent(u.id)}`);
        return `${u.email} is deleted: their logins, passkeys, fleet roles and open sessions ended.`;
      }),
    ];
    replace(cell, buttons());
    return cell;
  }

  function loadMembers(): void {
    const fleet = fleetSel.value;
    if (fleet === "") {
      setText(memberState, "There is no fleet yet.");
      return;
    }
    call<Member[]>("GET", `/api/v1/fleets/${encodeURIComponent(fleet)}/members`).then((ms) => {
      if (fleet !== fleetSel.value) {
        return;
      }
      setText(memberState, ms.length === 0 ? `Fleet ${fleet} has no members.` : `${plural(ms.length, "member")} of ${fleet}.`);
      redraw(memberList, ms.length === 0 ? h("span", {}) : h("div", { class: "table-wrap" }, h("table", { class: "members" },
        h("caption", { class: "visually-hidden" }, `Members of ${fleet}`),
        h("thead", {}, h("tr", {},
          h("th", { scope: "col" }, "Member"),
          h("th", { scope: "col" }, "Role"),
          h("th", { scope: "col" }, "Remove"))),
        h("tbody", {}, ms.map((m) => {
          const who = m.email ?? m.user_id ?? "";
          const ref = m.user_id ?? m.email ?? "";
          const sel = roleSelect(`role-${ref}`, m.role, `Role of ${who} in ${fleet}`);
          sel.dataset["key"] = `role:${ref}`;
          const set = h("button", { type: "button", class: "secondary", "data-key": `set:${ref}`, "aria-label": `Set the role of ${who} in ${fleet}` }, "Set");
          set.addEventListener("click", () => act(set, result, async () => {
            const got = await call<Member>("PUT", `/api/v1/fleets/${encodeURIComponent(fleet)}/members/${encodeURIComponent(ref)}`, { role: sel.value });
            return `${got.email ?? who} is now ${got.role} of ${fleet}.`;
          }, loadMembers));
          const remove = h("button", { type: "button", class: "danger", "data-key": `remove:${ref}`, "aria-label": `Remove ${who} from ${fleet}` }, "Remove");
          remove.addEventListener("click", () => act(remove, result, async () => {
            await call<void>("DELETE", `/api/v1/fleets/${encodeURIComponent(fleet)}/members/${encodeURIComponent(ref)}`);
            return `${who} has no role in ${fleet} any more.`;
          }, loadMembers));
          return h("tr", { "data-id": ref },
            h("th", { scope: "row", "data-label": "Member" }, who),
            h("td", { "data-label": "Role" }, h("span", { class: "inline" }, sel, " ", set)),
            h("td", { "data-label": "Remove" }, remove));
        })))));
    }, (err: unknown) => setText(memberState, "The members could not be listed: " + message(err)));
  }

  const form = h("form", { class: "filters", "aria-labelledby": "create-title" },
    h("div", { class: "field" }, h("label", { for: "new-email" }, "Email"), email),
    h("div", { class: "field check" }, admin, h("label", { for: "new-admin" }, "Administrator")),
    h("div", { class: "field" }, create));
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    replace(created);
    const address = email.value.trim();
    act(create, result, async () => {
      const got = await call<CreateUserResponse>("POST", "/api/v1/users", { email: address, admin: admin.checked });
      showCreated(got, `${got.user.email}'s first login`);
      email.value = "";
      admin.checked = false;
      return `User ${got.user.email} created${got.user.admin ? " (an administrator)" : ""}: give them the password and the authenticator secret below.`;
    }, loadUsers);
  });

  function secretField(id: string, label: string, value: string): Node {
    const box = h("input", { id, type: "text", readonly: true, value, spellcheck: "false", autocomplete: "off", class: "secret" });
    const copy = h("button", { type: "button", class: "secondary", "aria-label": `Copy the ${label.toLowerCase()}` }, "Copy");
    copy.addEventListener("click", () => {
      box.select();
      navigator.clipboard.writeText(value).then(() => setText(copy, "Copied"), () => setText(copy, "Selected: press Ctrl+C"));
    });
    return h("div", { class: "field" }, h("label", { for: id }, label), h("span", { class: "inline" }, box, " ", copy));
  }

  function showCreated(r: CreateUserResponse, title: string): void {
    const secret = /[?&]secret=([A-Z2-7]+)/i.exec(r.totp_uri)?.[1] ?? "";
    replace(created, h("div", { class: "card created", id: "created-user" },
      h("h3", {}, title),
      r.password ? secretField("new-password", "Password", r.password) : null,
      secretField("new-totp-uri", "Authenticator URI (otpauth)", r.totp_uri),
      secret ? secretField("new-totp-secret", "Authenticator secret", secret) : null,
      h("p", { class: "hint" }, "Shown this once, as `porthole users create` and `reset` print them: the server keeps only their hashes. Give them to the user by a channel you trust; they log in with the password and a code of their authenticator app.")));
    (created.querySelector("input") as HTMLInputElement | null)?.focus();
  }

  const addForm = h("form", { class: "filters", "aria-label": "Give a user a role" },
    h("div", { class: "field" }, h("label", { for: "add-user" }, "User's email"), addUser, userEmails),
    h("div", { class: "field" }, h("label", { for: "add-role" }, "Role"), addRole),
    h("div", { class: "field" }, add));
  addForm.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const fleet = fleetSel.value;
    const who = addUser.value.trim();
    if (who === "") {
      replace(result, h("p", { class: "error", role: "alert" }, "Give the email of the user to add."));
      addUser.focus();
      return;
    }
    act(add, result, async () => {
      const got = await call<Member>("PUT", `/api/v1/fleets/${encodeURIComponent(fleet)}/members/${encodeURIComponent(who)}`, { role: addRole.value });
      addUser.value = "";
      return `${got.email ?? who} is now ${got.role} of ${fleet}.`;
    }, loadMembers);
  });
  fleetSel.addEventListener("change", loadMembers);

  const membersSection = h("section", { "aria-labelledby": "members-title" },
    h("h2", { id: "members-title" }, "Fleet roles"),
    h("div", { class: "filters" }, h("div", { class: "field" }, h("label", { for: "members-fleet" }, "Fleet"), fleetSel)),
    memberState,
    memberList,
    addForm);

  loadUsers();
  call<Fleet[]>("GET", "/api/v1/fleets").then((fs) => {
    replace(fleetSel, fs.map((f) => h("option", { value: f.name }, f.name)));
    loadMembers();
  }, (err: unknown) => setText(memberState, "The fleets could not be listed: " + message(err)));

  return {
    title: "Users and fleet roles",
    focus: heading,
    node: h("div", { class: "page" },
      heading,
      state,
      result,
      h("section", { "aria-labelledby": "create-title" },
        h("h2", { id: "create-title" }, "New user"),
        form,
        created),
      h("section", { "aria-labelledby": "users-title" },
        h("h2", { id: "users-title" }, "Users"),
        userList),
      membersSection),
  };
}
