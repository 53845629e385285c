// What the console's router needs of a page, and what pages need of the
// console.
import type { PresenceFeed } from "./presence.js";
import type { User } from "./types.js";

export interface Page {
  // title goes in the window's title, before " · Porthole".
  title: string;
  node: Node;
  // focus takes the keyboard focus when the page is reached by a link:
  // its heading, so a screen reader starts there.
  focus?: HTMLElement;
  // cleanup runs when the page is left.
  cleanup?: () => void;
}

export interface Console {
  me: User;
  feed: PresenceFeed;
  // navigate shows the page at path (under /console/) and adds it to the
  // history.
  navigate(path: string): void;
}
